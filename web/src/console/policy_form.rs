//! The policy editor's form: every field of [`Policy`] as a plain HTML input, both ways.
//!
//! Unset means "no opinion" (the other layers decide), so every input can be left empty, and yes/no fields have a
//! third choice. Parsing names the field it failed on with the same dotted path the API uses
//! (`policy.widevine.min_security_level`), so the page can put the message next to its input; the form's input
//! names are those paths with `_` for `.` (`widevine_min_security_level`).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use clavis_core::ClavisError;
use clavis_core::ids::TrackType;
use clavis_core::policy::{FairPlayRules, Hdcp, IpNetwork, PlayReadyRules, Policy, WidevineRules};
use serde::Deserialize;

/// The track types a policy can list, in the order the page shows them.
pub(super) const TRACKS: [(&str, TrackType); 5] = [
    ("SD", TrackType::Sd),
    ("HD", TrackType::Hd),
    ("UHD1", TrackType::Uhd1),
    ("UHD2", TrackType::Uhd2),
    ("AUDIO", TrackType::Audio),
];

/// The HDCP choices for Widevine's `required_hdcp`, as the API spells them.
pub(super) const HDCP_LEVELS: [&str; 7] = ["NONE", "V1", "V2", "V2_1", "V2_2", "V2_3", "NO_DIGITAL_OUTPUT"];

/// The policy as the form posts it: all text, empty for unset.
#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct PolicyForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub license_duration_seconds: String,
    /// UTC, as RFC 3339 (`2027-01-31T23:59:59Z`) or as a `datetime-local` input sends it (`2027-01-31T23:59`).
    #[serde(default)]
    pub expires_at: String,
    #[serde(default)]
    pub persistent: String,
    #[serde(default)]
    pub rental_duration_seconds: String,
    #[serde(default)]
    pub playback_duration_seconds: String,
    /// "on" to limit the track types to the ticked ones (unticked all: no keys at all).
    #[serde(default)]
    pub limit_tracks: String,
    #[serde(default)]
    pub track_sd: String,
    #[serde(default)]
    pub track_hd: String,
    #[serde(default)]
    pub track_uhd1: String,
    #[serde(default)]
    pub track_uhd2: String,
    #[serde(default)]
    pub track_audio: String,
    #[serde(default)]
    pub max_concurrent_streams: String,
    #[serde(default)]
    pub max_devices: String,
    #[serde(default)]
    pub renewal_interval_seconds: String,
    /// One network per line (or separated by commas).
    #[serde(default)]
    pub allowed_client_networks: String,
    #[serde(default)]
    pub allowed_origins: String,
    #[serde(default)]
    pub single_use: String,
    #[serde(default)]
    pub widevine_min_security_level: String,
    #[serde(default)]
    pub widevine_required_hdcp: String,
    #[serde(default)]
    pub widevine_disable_analog_output: String,
    #[serde(default)]
    pub playready_min_security_level: String,
    #[serde(default)]
    pub playready_digital_video_protection: String,
    #[serde(default)]
    pub playready_analog_video_protection: String,
    #[serde(default)]
    pub playready_digital_audio_protection: String,
    #[serde(default)]
    pub playready_require_hdcp_type_1: String,
    #[serde(default)]
    pub fairplay_hdcp_required: String,
    #[serde(default)]
    pub fairplay_allow_airplay: String,
    #[serde(default)]
    pub fairplay_allow_av_adapter: String,
}

/// A field the form could not use: the input's name and what is wrong with it.
#[derive(Clone, Debug)]
pub(super) struct FieldProblem {
    pub input: String,
    pub message: String,
}

impl FieldProblem {
    /// The input a catalog error is about (its field `policy.widevine.min_security_level` or
    /// `default_policy.x`), or the whole form when it names none.
    pub fn of(e: &ClavisError) -> FieldProblem {
        let input = e
            .field
            .as_deref()
            .map(|f| f.trim_start_matches("default_").trim_start_matches("policy.").replace('.', "_"))
            .unwrap_or_default();
        FieldProblem { input, message: e.detail.to_string() }
    }
}

fn problem(input: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem { input: input.to_owned(), message: message.into() }
}

fn number<T: std::str::FromStr>(input: &str, value: &str) -> Result<Option<T>, FieldProblem> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| problem(input, format!("{value:?} is not a whole number of the right size")))
}

fn yes_no(input: &str, value: &str) -> Result<Option<bool>, FieldProblem> {
    match value.trim() {
        "" => Ok(None),
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        other => Err(problem(input, format!("{other:?} is not yes, no or unset"))),
    }
}

fn list(value: &str) -> Vec<&str> {
    value.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()).collect()
}

fn expiry(value: &str) -> Result<Option<DateTime<Utc>>, FieldProblem> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|naive| Some(naive.and_utc()))
        .ok_or_else(|| problem("expires_at", format!("{value:?} is not a UTC time like 2027-01-31T23:59")))
}

fn hdcp(value: &str) -> Result<Option<Hdcp>, FieldProblem> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map(Some)
        .map_err(|_| problem("widevine_required_hdcp", format!("{value:?} is not an HDCP level")))
}

fn ticked(value: &str) -> bool {
    !value.trim().is_empty()
}

impl PolicyForm {
    /// The policy the form describes, with each field's own range checked ([`Policy::validate`]).
    pub fn policy(&self) -> Result<Policy, FieldProblem> {
        let allowed_tracks = ticked(&self.limit_tracks).then(|| {
            let ticks = [&self.track_sd, &self.track_hd, &self.track_uhd1, &self.track_uhd2, &self.track_audio];
            TRACKS.iter().zip(ticks).filter(|(_, tick)| ticked(tick)).map(|((_, t), _)| *t).collect::<BTreeSet<_>>()
        });
        let networks = list(&self.allowed_client_networks);
        let allowed_client_networks = if networks.is_empty() {
            None
        } else {
            Some(
                networks
                    .iter()
                    .map(|n| IpNetwork::parse(n).map_err(|e| problem("allowed_client_networks", e)))
                    .collect::<Result<BTreeSet<_>, _>>()?,
            )
        };
        let origins = list(&self.allowed_origins);
        let widevine = WidevineRules {
            min_security_level: number("widevine_min_security_level", &self.widevine_min_security_level)?,
            required_hdcp: hdcp(&self.widevine_required_hdcp)?,
            disable_analog_output: yes_no("widevine_disable_analog_output", &self.widevine_disable_analog_output)?,
        };
        let playready = PlayReadyRules {
            min_security_level: number("playready_min_security_level", &self.playready_min_security_level)?,
            digital_video_protection: number(
                "playready_digital_video_protection",
                &self.playready_digital_video_protection,
            )?,
            analog_video_protection: number(
                "playready_analog_video_protection",
                &self.playready_analog_video_protection,
            )?,
            digital_audio_protection: number(
                "playready_digital_audio_protection",
                &self.playready_digital_audio_protection,
            )?,
            require_hdcp_type_1: yes_no("playready_require_hdcp_type_1", &self.playready_require_hdcp_type_1)?,
        };
        let fairplay = FairPlayRules {
            hdcp_required: yes_no("fairplay_hdcp_required", &self.fairplay_hdcp_required)?,
            allow_airplay: yes_no("fairplay_allow_airplay", &self.fairplay_allow_airplay)?,
            allow_av_adapter: yes_no("fairplay_allow_av_adapter", &self.fairplay_allow_av_adapter)?,
        };
        let policy = Policy {
            license_duration_seconds: number("license_duration_seconds", &self.license_duration_seconds)?,
            expires_at: expiry(&self.expires_at)?,
            persistent: yes_no("persistent", &self.persistent)?,
            rental_duration_seconds: number("rental_duration_seconds", &self.rental_duration_seconds)?,
            playback_duration_seconds: number("playback_duration_seconds", &self.playback_duration_seconds)?,
            allowed_tracks,
            widevine: (widevine != WidevineRules::default()).then_some(widevine),
            playready: (playready != PlayReadyRules::default()).then_some(playready),
            fairplay: (fairplay != FairPlayRules::default()).then_some(fairplay),
            max_concurrent_streams: number("max_concurrent_streams", &self.max_concurrent_streams)?,
            max_devices: number("max_devices", &self.max_devices)?,
            renewal_interval_seconds: number("renewal_interval_seconds", &self.renewal_interval_seconds)?,
            allowed_client_networks,
            allowed_origins: (!origins.is_empty())
                .then(|| origins.iter().map(|o| o.trim_end_matches('/').to_owned()).collect()),
            single_use: yes_no("single_use", &self.single_use)?,
        };
        policy.validate().map_err(|e| FieldProblem::of(&e))?;
        Ok(policy)
    }

    /// The form showing `policy` (the CSRF token is the page's to set).
    pub fn of(policy: &Policy) -> PolicyForm {
        fn n<T: ToString>(v: Option<T>) -> String {
            v.map(|v| v.to_string()).unwrap_or_default()
        }
        fn b(v: Option<bool>) -> String {
            v.map(|v| v.to_string()).unwrap_or_default()
        }
        let track = |t: TrackType| {
            if policy.allowed_tracks.as_ref().is_some_and(|s| s.contains(&t)) { "on".to_owned() } else { String::new() }
        };
        let widevine = policy.widevine.clone().unwrap_or_default();
        let playready = policy.playready.clone().unwrap_or_default();
        let fairplay = policy.fairplay.clone().unwrap_or_default();
        let join = |items: Vec<String>| items.join("\n");
        PolicyForm {
            csrf: String::new(),
            license_duration_seconds: n(policy.license_duration_seconds),
            expires_at: policy.expires_at.map(|t| t.format("%Y-%m-%dT%H:%M").to_string()).unwrap_or_default(),
            persistent: b(policy.persistent),
            rental_duration_seconds: n(policy.rental_duration_seconds),
            playback_duration_seconds: n(policy.playback_duration_seconds),
            limit_tracks: if policy.allowed_tracks.is_some() { "on".into() } else { String::new() },
            track_sd: track(TrackType::Sd),
            track_hd: track(TrackType::Hd),
            track_uhd1: track(TrackType::Uhd1),
            track_uhd2: track(TrackType::Uhd2),
            track_audio: track(TrackType::Audio),
            max_concurrent_streams: n(policy.max_concurrent_streams),
            max_devices: n(policy.max_devices),
            renewal_interval_seconds: n(policy.renewal_interval_seconds),
            allowed_client_networks: join(
                policy.allowed_client_networks.iter().flatten().map(ToString::to_string).collect(),
            ),
            allowed_origins: join(policy.allowed_origins.iter().flatten().cloned().collect()),
            single_use: b(policy.single_use),
            widevine_min_security_level: n(widevine.min_security_level),
            widevine_required_hdcp: widevine
                .required_hdcp
                .and_then(|h| serde_json::to_value(h).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            widevine_disable_analog_output: b(widevine.disable_analog_output),
            playready_min_security_level: n(playready.min_security_level),
            playready_digital_video_protection: n(playready.digital_video_protection),
            playready_analog_video_protection: n(playready.analog_video_protection),
            playready_digital_audio_protection: n(playready.digital_audio_protection),
            playready_require_hdcp_type_1: b(playready.require_hdcp_type_1),
            fairplay_hdcp_required: b(fairplay.hdcp_required),
            fairplay_allow_airplay: b(fairplay.allow_airplay),
            fairplay_allow_av_adapter: b(fairplay.allow_av_adapter),
        }
    }
}

/// What a policy editor page shows: the form's values, the field in trouble, and whether it may be changed.
pub(super) struct PolicyEditor {
    pub form: PolicyForm,
    pub problem: Option<FieldProblem>,
    pub can_edit: bool,
    /// The layer above this one in words ("the platform" or "the tenant default"), for the hints.
    pub above: &'static str,
}

impl PolicyEditor {
    /// The message for `input`, if it is the one in trouble (templates call this per input).
    pub fn error_for(&self, input: &str) -> Option<&str> {
        self.problem.as_ref().filter(|p| p.input == input).map(|p| p.message.as_str())
    }

    /// The message when it names no input the form has (shown above the form).
    pub fn form_error(&self) -> Option<&str> {
        self.problem.as_ref().filter(|p| !INPUTS.contains(&p.input.as_str())).map(|p| p.message.as_str())
    }
}

/// Every input the policy form has (for errors that name none of them).
const INPUTS: &[&str] = &[
    "license_duration_seconds",
    "expires_at",
    "persistent",
    "rental_duration_seconds",
    "playback_duration_seconds",
    "allowed_tracks",
    "max_concurrent_streams",
    "max_devices",
    "renewal_interval_seconds",
    "allowed_client_networks",
    "allowed_origins",
    "single_use",
    "widevine_min_security_level",
    "widevine_required_hdcp",
    "widevine_disable_analog_output",
    "playready_min_security_level",
    "playready_digital_video_protection",
    "playready_analog_video_protection",
    "playready_digital_audio_protection",
    "playready_require_hdcp_type_1",
    "fairplay_hdcp_required",
    "fairplay_allow_airplay",
    "fairplay_allow_av_adapter",
    "limit_tracks",
    "track_sd",
    "track_hd",
    "track_uhd1",
    "track_uhd2",
    "track_audio",
];

/// One input of the policy form as the template draws it.
pub(super) struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    /// `number`, `datetime`, `textarea`, `select` or `checkbox`.
    pub kind: &'static str,
    pub value: String,
    /// For `select`: (value, label); the first is the "unset" choice.
    pub options: Vec<(String, String)>,
    pub error: Option<String>,
}

/// A titled group of inputs (a `fieldset`).
pub(super) struct Section {
    pub title: &'static str,
    pub fields: Vec<FieldView>,
}

fn choices(unset: &str, values: &[(&str, &str)]) -> Vec<(String, String)> {
    std::iter::once((String::new(), unset.to_owned()))
        .chain(values.iter().map(|(v, l)| ((*v).to_owned(), (*l).to_owned())))
        .collect()
}

impl PolicyEditor {
    /// The form's inputs in page order, with their values and the one error, if any.
    pub fn sections(&self) -> Vec<Section> {
        let f = &self.form;
        let field =
            |name: &'static str, label: &'static str, hint: &'static str, kind: &'static str, value: &str| FieldView {
                name,
                label,
                hint,
                kind,
                value: value.to_owned(),
                options: Vec::new(),
                error: self.error_for(name).map(str::to_owned),
            };
        let yes_no = |name: &'static str, label: &'static str, hint: &'static str, value: &str| FieldView {
            options: choices("unset", &[("true", "yes"), ("false", "no")]),
            ..field(name, label, hint, "select", value)
        };
        let mut tracks = vec![field(
            "limit_tracks",
            "Limit track types",
            "deliver keys only for the ticked types",
            "checkbox",
            &f.limit_tracks,
        )];
        let ticks = [&f.track_sd, &f.track_hd, &f.track_uhd1, &f.track_uhd2, &f.track_audio];
        let names = ["track_sd", "track_hd", "track_uhd1", "track_uhd2", "track_audio"];
        for (((label, _), tick), name) in TRACKS.iter().zip(ticks).zip(names) {
            tracks.push(field(name, label, "", "checkbox", tick));
        }
        if let Some(last) = tracks.first_mut() {
            last.error = self.error_for("allowed_tracks").map(str::to_owned);
        }
        let hdcp: Vec<(&str, &str)> = HDCP_LEVELS.iter().map(|h| (*h, *h)).collect();
        vec![
            Section {
                title: "Duration",
                fields: vec![
                    field(
                        "license_duration_seconds",
                        "License duration (seconds)",
                        "0 means no limit",
                        "number",
                        &f.license_duration_seconds,
                    ),
                    field(
                        "expires_at",
                        "Absolute expiry (UTC)",
                        "no license after this time",
                        "datetime",
                        &f.expires_at,
                    ),
                    yes_no("persistent", "Persistent (offline) licenses", "", &f.persistent),
                    field(
                        "rental_duration_seconds",
                        "Rental window (seconds)",
                        "playback must start within it; 0 means no limit",
                        "number",
                        &f.rental_duration_seconds,
                    ),
                    field(
                        "playback_duration_seconds",
                        "Playback window (seconds)",
                        "how long playback may last once started; 0 means no limit",
                        "number",
                        &f.playback_duration_seconds,
                    ),
                    field(
                        "renewal_interval_seconds",
                        "Renewal interval (seconds)",
                        "0 means no renewals",
                        "number",
                        &f.renewal_interval_seconds,
                    ),
                ],
            },
            Section { title: "Tracks", fields: tracks },
            Section {
                title: "Users, devices and clients",
                fields: vec![
                    field(
                        "max_concurrent_streams",
                        "Max concurrent streams per user",
                        "",
                        "number",
                        &f.max_concurrent_streams,
                    ),
                    field("max_devices", "Max devices per user", "", "number", &f.max_devices),
                    yes_no("single_use", "Single-use tokens", "a token's jti buys one license", &f.single_use),
                    field(
                        "allowed_client_networks",
                        "Allowed client networks",
                        "one CIDR or address per line; empty: any",
                        "textarea",
                        &f.allowed_client_networks,
                    ),
                    field(
                        "allowed_origins",
                        "Allowed web origins",
                        "one https://host[:port] per line; empty: any",
                        "textarea",
                        &f.allowed_origins,
                    ),
                ],
            },
            Section {
                title: "Widevine",
                fields: vec![
                    FieldView {
                        options: choices(
                            "unset",
                            &[
                                ("1", "1 · SW_SECURE_CRYPTO (L3)"),
                                ("2", "2 · SW_SECURE_DECODE"),
                                ("3", "3 · HW_SECURE_CRYPTO"),
                                ("4", "4 · HW_SECURE_DECODE"),
                                ("5", "5 · HW_SECURE_ALL (L1)"),
                            ],
                        ),
                        ..field(
                            "widevine_min_security_level",
                            "Lowest security level",
                            "",
                            "select",
                            &f.widevine_min_security_level,
                        )
                    },
                    FieldView {
                        options: choices("unset", &hdcp),
                        ..field("widevine_required_hdcp", "Required HDCP", "", "select", &f.widevine_required_hdcp)
                    },
                    yes_no(
                        "widevine_disable_analog_output",
                        "Disable analog output",
                        "",
                        &f.widevine_disable_analog_output,
                    ),
                ],
            },
            Section {
                title: "PlayReady",
                fields: vec![
                    FieldView {
                        options: choices("unset", &[("150", "150"), ("2000", "2000"), ("3000", "3000")]),
                        ..field(
                            "playready_min_security_level",
                            "Lowest security level",
                            "",
                            "select",
                            &f.playready_min_security_level,
                        )
                    },
                    field(
                        "playready_digital_video_protection",
                        "Digital video output protection level",
                        "100, 250, 270, 300 or 301",
                        "number",
                        &f.playready_digital_video_protection,
                    ),
                    field(
                        "playready_analog_video_protection",
                        "Analog video output protection level",
                        "100, 150 or 200",
                        "number",
                        &f.playready_analog_video_protection,
                    ),
                    field(
                        "playready_digital_audio_protection",
                        "Digital audio output protection level",
                        "100, 250 or 300",
                        "number",
                        &f.playready_digital_audio_protection,
                    ),
                    yes_no(
                        "playready_require_hdcp_type_1",
                        "Require HDCP type 1",
                        "",
                        &f.playready_require_hdcp_type_1,
                    ),
                ],
            },
            Section {
                title: "FairPlay",
                fields: vec![
                    yes_no("fairplay_hdcp_required", "Require HDCP", "", &f.fairplay_hdcp_required),
                    yes_no("fairplay_allow_airplay", "Allow AirPlay", "", &f.fairplay_allow_airplay),
                    yes_no("fairplay_allow_av_adapter", "Allow AV adapter", "", &f.fairplay_allow_av_adapter),
                ],
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_survives_the_form_both_ways() {
        let policy: Policy = serde_json::from_value(serde_json::json!({
            "license_duration_seconds": 3600,
            "expires_at": "2027-01-31T23:59:00Z",
            "persistent": false,
            "allowed_tracks": ["SD", "HD"],
            "widevine": {"min_security_level": 3, "required_hdcp": "V2_2"},
            "playready": {"min_security_level": 2000, "require_hdcp_type_1": true},
            "fairplay": {"allow_airplay": false},
            "max_devices": 3,
            "allowed_client_networks": ["203.0.113.0/24"],
            "allowed_origins": ["https://player.example.com"],
            "single_use": true
        }))
        .unwrap();
        assert_eq!(PolicyForm::of(&policy).policy().unwrap(), policy);
        assert_eq!(PolicyForm::of(&Policy::default()).policy().unwrap(), Policy::default());
    }

    #[test]
    fn bad_inputs_name_their_field() {
        let form = PolicyForm { max_devices: "many".into(), ..PolicyForm::default() };
        assert_eq!(form.policy().unwrap_err().input, "max_devices");
        let form = PolicyForm { widevine_min_security_level: "9".into(), ..PolicyForm::default() };
        assert_eq!(form.policy().unwrap_err().input, "widevine_min_security_level");
        let form = PolicyForm { allowed_client_networks: "10.0.0.0/40".into(), ..PolicyForm::default() };
        assert_eq!(form.policy().unwrap_err().input, "allowed_client_networks");
        let form = PolicyForm { expires_at: "tomorrow".into(), ..PolicyForm::default() };
        assert_eq!(form.policy().unwrap_err().input, "expires_at");
        let form = PolicyForm { allowed_origins: "player.example.com".into(), ..PolicyForm::default() };
        assert_eq!(form.policy().unwrap_err().input, "allowed_origins");
    }

    #[test]
    fn limiting_tracks_with_none_ticked_allows_none() {
        let form = PolicyForm { limit_tracks: "on".into(), ..PolicyForm::default() };
        assert_eq!(form.policy().unwrap().allowed_tracks, Some(BTreeSet::new()));
    }
}

//! The console's pages. Each handler: extract (the signed-in member first), authorize, parse, act, render.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use clavis_core::{ClavisError, ErrorCode};
use clavis_tenant::{ApiKeyInfo, Email, LinkPurpose, Member, NewTenant, Role, SessionInfo, SignIn};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use super::{Console, FormToken, PageError, SESSION_COOKIE, Shell, SignedIn, client_ip, user_agent};

pub(super) type Page = Result<HttpResponse, PageError>;

pub(super) fn html(status: actix_web::http::StatusCode, page: &impl Template) -> Page {
    let body = page.render().map_err(|e| ClavisError::internal("render", e))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

pub(super) fn ok(page: &impl Template) -> Page {
    html(actix_web::http::StatusCode::OK, page)
}

/// A page of a form used before sign-in, setting the form cookie when the browser has none yet.
fn anonymous_form(token: FormToken, page: &impl Template, status: actix_web::http::StatusCode) -> Page {
    let mut response = html(status, page)?;
    if let Some(cookie) = token.new_cookie {
        response.add_cookie(&cookie).map_err(|e| ClavisError::internal("cookie", e))?;
    }
    Ok(response)
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

pub(super) fn console(data: &web::Data<Console>) -> &Console {
    data.get_ref()
}

// ---------------------------------------------------------------------------------------------------------------
// Sign-up and email verification

#[derive(Template)]
#[template(path = "console/signup.html")]
struct SignUpPage {
    csrf: String,
    organization: String,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/notice.html")]
struct NoticePage {
    title: &'static str,
    message: String,
    link: Option<(&'static str, &'static str)>,
}

#[derive(Deserialize)]
struct SignUpForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    organization: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[get("/signup")]
async fn sign_up_page(data: web::Data<Console>, req: HttpRequest) -> Page {
    let token = FormToken::for_page(console(&data), &req)?;
    let page = SignUpPage { csrf: token.value.clone(), organization: String::new(), email: String::new(), error: None };
    anonymous_form(token, &page, actix_web::http::StatusCode::OK)
}

#[post("/signup")]
async fn sign_up(data: web::Data<Console>, req: HttpRequest, form: web::Form<SignUpForm>) -> Page {
    FormToken::check(&req, &form.csrf)?;
    let console = console(&data);
    let form = form.into_inner();
    if !console.limits.sign_up_allowed(&client_ip(&req)) {
        return Err(ClavisError::new(ErrorCode::SignUpLimited, "too many sign-ups from this address").into());
    }
    let created = match Email::parse(&form.email) {
        Ok(email) => console
            .directory
            .create_tenant(NewTenant {
                name: form.organization.clone(),
                email,
                password: Some(SecretString::from(form.password)),
            })
            .await
            .map(|created| (created, form.email.clone())),
        Err(e) => Err(e),
    };
    let (created, _) = match created {
        Ok(created) => created,
        Err(e) if e.code == ErrorCode::Internal || e.code == ErrorCode::DatabaseUnavailable => return Err(e.into()),
        Err(e) => {
            let token = FormToken::for_page(console, &req)?;
            let message = match &e.field {
                Some(field) => format!("{}: {}", field_label(field), e.detail),
                None => e.detail.to_string(),
            };
            let page = SignUpPage {
                csrf: token.value.clone(),
                organization: form.organization,
                email: form.email,
                error: Some(message),
            };
            return anonymous_form(token, &page, e.code.status());
        }
    };
    let owner = Email::parse(&created.owner_email)?;
    if let Some(member) = console.accounts.find_by_email(&owner).await? {
        send_verification(console, &member).await;
    }
    ok(&NoticePage {
        title: "Check your mail",
        message: format!(
            "We created the account {} and sent a verification link to {}. Open it to activate your sign-in. \
             Your API keys are on the API keys page once you are signed in.",
            created.name, created.owner_email
        ),
        link: Some(("/login", "Go to the sign-in page")),
    })
}

fn field_label(field: &str) -> &str {
    match field {
        "name" => "Organization",
        "email" => "Email",
        "password" => "Password",
        other => other,
    }
}

/// Mail a fresh verification link. A mail failure is logged, not shown: the sign-in page offers a new link.
async fn send_verification(console: &Console, member: &Member) {
    let result = async {
        let token = console.accounts.issue_link(member, LinkPurpose::VerifyEmail).await?;
        let link = console.link(&format!("/verify?token={token}"));
        console
            .mailer
            .send(
                &member.email,
                "Verify your email address for Clavis",
                format!(
                    "Welcome to Clavis.\n\nOpen this link to verify your email address (valid for 48 hours, once):\n\n{link}\n\n\
                     If you did not sign up, ignore this mail.\n"
                ),
            )
            .await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "verification mail not sent");
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The link in the verification mail: one visit verifies the address.
#[get("/verify")]
async fn verify(data: web::Data<Console>, query: web::Query<TokenQuery>) -> Page {
    let console = console(&data);
    let member = console.accounts.redeem_link(&query.token, LinkPurpose::VerifyEmail).await?;
    console.accounts.mark_verified(&member).await?;
    ok(&NoticePage {
        title: "Email address verified",
        message: format!("{} is verified. You can sign in now.", member.email),
        link: Some(("/login", "Sign in")),
    })
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

#[post("/verify/resend")]
async fn resend_verification(data: web::Data<Console>, req: HttpRequest, form: web::Form<EmailForm>) -> Page {
    FormToken::check(&req, &form.csrf)?;
    let console = console(&data);
    // Counted like sign-ups: each sends a mail.
    if !console.limits.sign_up_allowed(&client_ip(&req)) {
        return Err(ClavisError::new(ErrorCode::SignUpLimited, "too many requests from this address").into());
    }
    if let Ok(email) = Email::parse(&form.email)
        && let Some(member) = console.accounts.find_by_email(&email).await?
        && !member.verified
        && member.has_password
    {
        send_verification(console, &member).await;
    }
    // The same answer whether or not the address has an account, so this form tells nobody who signed up.
    ok(&NoticePage {
        title: "Check your mail",
        message: "If that address has an account waiting for verification, a new link is on its way.".into(),
        link: Some(("/login", "Back to sign-in")),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Sign-in and sign-out

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    csrf: String,
    email: String,
    error: Option<String>,
    /// Offer a new verification mail.
    unverified: bool,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[get("/login")]
async fn login_page(data: web::Data<Console>, req: HttpRequest) -> Page {
    let token = FormToken::for_page(console(&data), &req)?;
    let page = LoginPage { csrf: token.value.clone(), email: String::new(), error: None, unverified: false };
    anonymous_form(token, &page, actix_web::http::StatusCode::OK)
}

#[post("/login")]
async fn login(data: web::Data<Console>, req: HttpRequest, form: web::Form<LoginForm>) -> Page {
    FormToken::check(&req, &form.csrf)?;
    let console = console(&data);
    let form = form.into_inner();
    let ip = client_ip(&req);
    let refuse = |error: ClavisError, unverified: bool, email: String| -> Page {
        let token = FormToken::for_page(console, &req)?;
        let page = LoginPage {
            csrf: token.value.clone(),
            email,
            error: Some(format!("{} ({})", error.detail, error.code.code())),
            unverified,
        };
        let mut response = anonymous_form(token, &page, error.code.status())?;
        response
            .headers_mut()
            .insert(clavis_core::error::ERROR_HEADER, header::HeaderValue::from_static(error.code.code_str()));
        Ok(response)
    };
    let wrong = || ClavisError::new(ErrorCode::LoginFailed, "the email or the password is wrong");
    let Ok(email) = Email::parse(&form.email) else { return refuse(wrong(), false, form.email) };
    if console.limits.sign_in_locked(email.as_str(), &ip) {
        return refuse(
            ClavisError::new(
                ErrorCode::AccountLocked,
                "too many failed sign-ins; sign-in is locked for 15 minutes (or reset your password)",
            ),
            false,
            form.email,
        );
    }
    let member = match console.accounts.sign_in(&email, SecretString::from(form.password)).await? {
        SignIn::Ok(member) => member,
        SignIn::WrongCredentials => {
            console.limits.sign_in_failed(email.as_str(), &ip);
            return refuse(wrong(), false, form.email);
        }
        SignIn::NotVerified(_) => {
            return refuse(
                ClavisError::new(
                    ErrorCode::EmailNotVerified,
                    "verify your email address first: open the link we mailed you, or ask for a new one below",
                ),
                true,
                form.email,
            );
        }
    };
    console.limits.sign_in_succeeded(email.as_str());
    // A new session id at every sign-in, and the one the browser brought (if any) ends: no session fixation.
    if let Some(previous) = req.cookie(SESSION_COOKIE) {
        console.accounts.end_session(previous.value()).await?;
    }
    let ua = user_agent(&req);
    let session_id = console.accounts.start_session(&member, ua.as_deref(), Some(&ip)).await?;
    let mut response = see_other("/console");
    response.add_cookie(&console.cookie(SESSION_COOKIE, session_id)).map_err(|e| ClavisError::internal("cookie", e))?;
    Ok(response)
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

#[post("/logout")]
async fn logout(session: SignedIn, data: web::Data<Console>, form: web::Form<CsrfForm>) -> Page {
    session.check_csrf(&form.csrf)?;
    let console = console(&data);
    console.accounts.end_session(&session.session_id).await?;
    let mut response = see_other("/login");
    response.add_removal_cookie(&console.removal(SESSION_COOKIE)).map_err(|e| ClavisError::internal("cookie", e))?;
    Ok(response)
}

// ---------------------------------------------------------------------------------------------------------------
// Password reset and invitations (both set a password through a mailed link)

#[derive(Template)]
#[template(path = "console/forgot.html")]
struct ForgotPage {
    csrf: String,
}

#[get("/password/forgot")]
async fn forgot_page(data: web::Data<Console>, req: HttpRequest) -> Page {
    let token = FormToken::for_page(console(&data), &req)?;
    let page = ForgotPage { csrf: token.value.clone() };
    anonymous_form(token, &page, actix_web::http::StatusCode::OK)
}

#[post("/password/forgot")]
async fn forgot(data: web::Data<Console>, req: HttpRequest, form: web::Form<EmailForm>) -> Page {
    FormToken::check(&req, &form.csrf)?;
    let console = console(&data);
    if !console.limits.sign_up_allowed(&client_ip(&req)) {
        return Err(ClavisError::new(ErrorCode::SignUpLimited, "too many requests from this address").into());
    }
    if let Ok(email) = Email::parse(&form.email)
        && let Some(member) = console.accounts.find_by_email(&email).await?
        && member.has_password
    {
        let result = async {
            let token = console.accounts.issue_link(&member, LinkPurpose::ResetPassword).await?;
            let link = console.link(&format!("/password/reset?token={token}"));
            console
                .mailer
                .send(
                    &member.email,
                    "Reset your Clavis password",
                    format!(
                        "Open this link to choose a new password (valid for one hour, once):\n\n{link}\n\n\
                         If you did not ask for this, ignore this mail; your password stays as it is.\n"
                    ),
                )
                .await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "password reset mail not sent");
        }
    }
    ok(&NoticePage {
        title: "Check your mail",
        message: "If that address has an account, a link to choose a new password is on its way.".into(),
        link: Some(("/login", "Back to sign-in")),
    })
}

#[derive(Template)]
#[template(path = "console/set_password.html")]
struct SetPasswordPage {
    csrf: String,
    token: String,
    action: &'static str,
    title: &'static str,
    email: String,
}

#[derive(Deserialize)]
struct SetPasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

async fn set_password_page(
    console: &Console,
    req: &HttpRequest,
    token: &str,
    purpose: LinkPurpose,
    action: &'static str,
    title: &'static str,
) -> Page {
    let member = console.accounts.peek_link(token, purpose).await?;
    let form_token = FormToken::for_page(console, req)?;
    let page =
        SetPasswordPage { csrf: form_token.value.clone(), token: token.to_owned(), action, title, email: member.email };
    anonymous_form(form_token, &page, actix_web::http::StatusCode::OK)
}

async fn set_password(console: &Console, req: &HttpRequest, form: SetPasswordForm, purpose: LinkPurpose) -> Page {
    FormToken::check(req, &form.csrf)?;
    let password = SecretString::from(form.password);
    clavis_tenant::password::check_strength(&password)?;
    let member = console.accounts.redeem_link(&form.token, purpose).await?;
    console.accounts.set_password(&member, password).await?;
    // The link reached the mailbox, which proves the address.
    console.accounts.mark_verified(&member).await?;
    console.limits.sign_in_succeeded(&member.email);
    ok(&NoticePage {
        title: "Password set",
        message: format!("The password of {} is set; every earlier session is signed out.", member.email),
        link: Some(("/login", "Sign in")),
    })
}

#[get("/password/reset")]
async fn reset_page(data: web::Data<Console>, req: HttpRequest, query: web::Query<TokenQuery>) -> Page {
    set_password_page(
        console(&data),
        &req,
        &query.token,
        LinkPurpose::ResetPassword,
        "/password/reset",
        "Choose a new password",
    )
    .await
}

#[post("/password/reset")]
async fn reset(data: web::Data<Console>, req: HttpRequest, form: web::Form<SetPasswordForm>) -> Page {
    set_password(console(&data), &req, form.into_inner(), LinkPurpose::ResetPassword).await
}

#[get("/invite")]
async fn invite_page(data: web::Data<Console>, req: HttpRequest, query: web::Query<TokenQuery>) -> Page {
    set_password_page(
        console(&data),
        &req,
        &query.token,
        LinkPurpose::Invite,
        "/invite",
        "Join your team: choose a password",
    )
    .await
}

#[post("/invite")]
async fn accept_invite(data: web::Data<Console>, req: HttpRequest, form: web::Form<SetPasswordForm>) -> Page {
    set_password(console(&data), &req, form.into_inner(), LinkPurpose::Invite).await
}

// ---------------------------------------------------------------------------------------------------------------
// Signed-in pages

struct SessionRow {
    label: String,
    created_at: String,
    last_seen_at: String,
    user_agent: String,
    ip: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "console/sessions.html")]
struct SessionsPage {
    shell: Shell,
    sessions: Vec<SessionRow>,
}

pub(super) fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[get("/console/sessions")]
async fn sessions(session: SignedIn, data: web::Data<Console>) -> Page {
    let member = session.require(Role::Viewer)?;
    let rows = console(&data).accounts.sessions(member).await?;
    let sessions = rows
        .into_iter()
        .map(|s: SessionInfo| SessionRow {
            current: s.is(&session.session_id),
            label: s.label,
            created_at: when(s.created_at),
            last_seen_at: when(s.last_seen_at),
            user_agent: s.user_agent.unwrap_or_default(),
            ip: s.ip.unwrap_or_default(),
        })
        .collect();
    ok(&SessionsPage { shell: session.shell(), sessions })
}

#[post("/console/sessions/sign-out-everywhere")]
async fn sign_out_everywhere(session: SignedIn, data: web::Data<Console>, form: web::Form<CsrfForm>) -> Page {
    let member = session.require(Role::Viewer)?;
    session.check_csrf(&form.csrf)?;
    let console = console(&data);
    console.accounts.end_all_sessions(member).await?;
    let mut response = see_other("/login");
    response.add_removal_cookie(&console.removal(SESSION_COOKIE)).map_err(|e| ClavisError::internal("cookie", e))?;
    Ok(response)
}

struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: String,
    revoked_at: Option<String>,
}

impl From<ApiKeyInfo> for KeyRow {
    fn from(k: ApiKeyInfo) -> Self {
        KeyRow {
            id: k.id.to_string(),
            name: k.name,
            prefix: k.prefix,
            created_at: when(k.created_at),
            last_used_at: k.last_used_at.map_or_else(|| "never".into(), when),
            revoked_at: k.revoked_at.map(when),
        }
    }
}

#[derive(Template)]
#[template(path = "console/api_keys.html")]
struct ApiKeysPage {
    shell: Shell,
    keys: Vec<KeyRow>,
    can_manage: bool,
    /// A key just created: shown this once.
    new_key: Option<(String, String)>,
}

async fn render_keys(session: &SignedIn, console: &Console, new_key: Option<(String, String)>) -> Page {
    let keys = console.directory.api_keys(session.tenant.id).await?.into_iter().map(KeyRow::from).collect();
    ok(&ApiKeysPage { shell: session.shell(), keys, can_manage: session.member.role >= Role::Developer, new_key })
}

#[get("/console/api-keys")]
async fn api_keys(session: SignedIn, data: web::Data<Console>) -> Page {
    session.require(Role::Viewer)?;
    render_keys(&session, console(&data), None).await
}

#[derive(Deserialize)]
struct NewKeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

#[post("/console/api-keys")]
async fn create_api_key(session: SignedIn, data: web::Data<Console>, form: web::Form<NewKeyForm>) -> Page {
    session.require(Role::Developer)?;
    session.check_csrf(&form.csrf)?;
    let console = console(&data);
    let (key, _) = console.directory.create_api_key(session.tenant.id, &form.name).await?;
    render_keys(&session, console, Some((form.name.trim().to_owned(), key))).await
}

#[post("/console/api-keys/{id}/revoke")]
async fn revoke_api_key(
    session: SignedIn,
    data: web::Data<Console>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Page {
    session.require(Role::Developer)?;
    session.check_csrf(&form.csrf)?;
    let key_id = Uuid::parse_str(&path)
        .map_err(|_| ClavisError::new(ErrorCode::ApiKeyNotFound, "no such API key in this account"))?;
    console(&data).directory.revoke_api_key(session.tenant.id, key_id).await?;
    Ok(see_other("/console/api-keys"))
}

struct MemberRow {
    user_id: String,
    email: String,
    role: &'static str,
    status: &'static str,
    /// The viewer of the page may change this member's role or remove them.
    manageable: bool,
}

#[derive(Template)]
#[template(path = "console/team.html")]
struct TeamPage {
    shell: Shell,
    members: Vec<MemberRow>,
    can_invite: bool,
    notice: Option<String>,
}

async fn render_team(session: &SignedIn, console: &Console, notice: Option<String>) -> Page {
    let members = console
        .accounts
        .members(session.tenant.id)
        .await?
        .into_iter()
        .map(|m| MemberRow {
            status: if m.verified {
                "active"
            } else if m.has_password {
                "email not verified"
            } else {
                "invited"
            },
            // Admins manage members up to their own role but never themselves; the owner manages everyone else.
            manageable: m.role != Role::Owner && m.role <= session.member.role && m.user_id != session.member.user_id,
            user_id: m.user_id.to_string(),
            email: m.email,
            role: m.role.as_str(),
        })
        .collect();
    ok(&TeamPage { shell: session.shell(), members, can_invite: session.member.role >= Role::Admin, notice })
}

#[get("/console/team")]
async fn team(session: SignedIn, data: web::Data<Console>) -> Page {
    session.require(Role::Viewer)?;
    render_team(&session, console(&data), None).await
}

#[derive(Deserialize)]
struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

/// The member a form names, if it is one this member may manage: not the owner, not oneself, not above one's role.
async fn manageable(session: &SignedIn, console: &Console, user_id: &str) -> Result<clavis_tenant::Member, PageError> {
    let not_found = || ClavisError::new(ErrorCode::MemberNotFound, "this account has no such member");
    let user_id = uuid::Uuid::parse_str(user_id).map_err(|_| not_found())?;
    let member = console.accounts.member(session.tenant.id, user_id).await?.ok_or_else(not_found)?;
    if member.user_id == session.member.user_id || member.role == Role::Owner || member.role > session.member.role {
        return Err(ClavisError::new(ErrorCode::RoleForbidden, "you cannot change this member").into());
    }
    Ok(member)
}

#[post("/console/team/{user_id}/role")]
async fn change_role(
    session: SignedIn,
    data: web::Data<Console>,
    path: web::Path<String>,
    form: web::Form<MemberForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let console = console(&data);
    let member = manageable(&session, console, &path).await?;
    let role =
        Role::parse(&form.role).ok_or_else(|| ClavisError::invalid("role", "choose admin, developer or viewer"))?;
    if role > session.member.role {
        return Err(ClavisError::new(ErrorCode::RoleForbidden, "you cannot give a role above your own").into());
    }
    let member = console.accounts.set_role(session.tenant.id, member.user_id, role).await?;
    render_team(&session, console, Some(format!("{} is now {}.", member.email, role.as_str()))).await
}

#[post("/console/team/{user_id}/remove")]
async fn remove_member(
    session: SignedIn,
    data: web::Data<Console>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let console = console(&data);
    let member = manageable(&session, console, &path).await?;
    let member = console.accounts.remove_member(session.tenant.id, member.user_id).await?;
    render_team(&session, console, Some(format!("{} was removed and signed out.", member.email))).await
}

#[post("/console/team")]
async fn invite(session: SignedIn, data: web::Data<Console>, form: web::Form<InviteForm>) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let console = console(&data);
    let email = Email::parse(&form.email)?;
    let role =
        Role::parse(&form.role).ok_or_else(|| ClavisError::invalid("role", "choose admin, developer or viewer"))?;
    // Admins hand out at most their own power.
    if role > session.member.role {
        return Err(ClavisError::new(ErrorCode::RoleForbidden, "you cannot give a role above your own").into());
    }
    let member = console.accounts.invite(session.tenant.id, &email, role).await?;
    let token = console.accounts.issue_link(&member, LinkPurpose::Invite).await?;
    let link = console.link(&format!("/invite?token={token}"));
    console
        .mailer
        .send(
            &member.email,
            &format!("You are invited to {} on Clavis", session.tenant.name),
            format!(
                "{} invited you to the Clavis account {} as {}.\n\nOpen this link to choose your password \
                 (valid for 7 days, once):\n\n{link}\n",
                session.member.email,
                session.tenant.name,
                role.as_str()
            ),
        )
        .await?;
    render_team(&session, console, Some(format!("Invitation sent to {}.", member.email))).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(sign_up_page)
        .service(sign_up)
        .service(verify)
        .service(resend_verification)
        .service(login_page)
        .service(login)
        .service(logout)
        .service(forgot_page)
        .service(forgot)
        .service(reset_page)
        .service(reset)
        .service(invite_page)
        .service(accept_invite)
        .service(sessions)
        .service(sign_out_everywhere)
        .service(api_keys)
        .service(create_api_key)
        .service(revoke_api_key)
        .service(team)
        .service(invite)
        .service(change_role)
        .service(remove_member);
    super::inspector::configure(cfg);
    super::devices::configure(cfg);
    super::error_codes::configure(cfg);
    super::policies::configure(cfg);
    super::integrations::configure(cfg);
    super::fairplay::configure(cfg);
    super::drm::configure(cfg);
    super::activity::configure(cfg);
}

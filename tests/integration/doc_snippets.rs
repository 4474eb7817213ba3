//! Every snippet in the guides is run by a test or says why it is not (issue 8). Each fenced block in the guides is
//! preceded, on the line before its opening fence, by one marker:
//!
//! - `<!-- snippet: run by tests/integration/FILE.rs::FN -->`: that test runs the snippet as written (it reads the
//!   guide, or an example file the guide shows verbatim);
//! - `<!-- snippet: not run verbatim: REASON (the same steps: tests/integration/FILE.rs::FN) -->`: that test takes
//!   the same steps by other means;
//! - `<!-- snippet: not run here: REASON -->`: nothing here can run it, and why (an Apple device, AWS, Android...).
//!
//! This test holds the markers to that: a block without one fails, and a named test must exist; a "run by" test must
//! also read the guide or the examples folder, or it could not be running the snippet.

use std::path::{Path, PathBuf};

const GUIDES: &[&str] = &[
    "docs/players.md",
    "docs/packagers.md",
    "docs/fairplay.md",
    "docs/offline.md",
    "docs/licenses.md",
    "docs/callback.md",
    "docs/tokens.md",
    "docs/migrating.md",
    "docs/operations.md",
    "docs/architecture.md",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/integration/FILE.rs::FN`: the file exists and defines FN. Returns the file's text.
fn named_test(reference: &str, at: &str) -> Result<String, String> {
    let (file, function) = reference.split_once("::").ok_or_else(|| format!("{at}: {reference:?} is not FILE::FN"))?;
    if !file.starts_with("tests/integration/") || !file.ends_with(".rs") {
        return Err(format!("{at}: {file:?} is not a file of the integration tests"));
    }
    let text = std::fs::read_to_string(root().join(file)).map_err(|e| format!("{at}: {file}: {e}"))?;
    let defines =
        [format!("async fn {function}("), format!("fn {function}(")].iter().any(|d| text.contains(d.as_str()));
    if !defines || function.is_empty() || !function.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("{at}: {file} has no test fn {function:?}"));
    }
    Ok(text)
}

/// The kind of a good marker line, or what is wrong with it.
fn check_marker(guide: &str, line: &str, at: &str) -> Result<&'static str, String> {
    let marker = line
        .trim()
        .strip_prefix("<!-- snippet: ")
        .and_then(|m| m.strip_suffix(" -->"))
        .ok_or_else(|| format!("{at}: the block has no snippet marker on the line before it (found {line:?})"))?;
    if let Some(reference) = marker.strip_prefix("run by ") {
        let test = named_test(reference.trim(), at)?;
        let name = Path::new(guide).file_name().and_then(|n| n.to_str()).unwrap_or(guide);
        if !test.contains(name) && !test.contains("docs/examples") {
            return Err(format!(
                "{at}: {reference} reads neither {name} nor docs/examples, so it cannot run the snippet"
            ));
        }
        Ok("run")
    } else if let Some(rest) = marker.strip_prefix("not run verbatim: ") {
        let (reason, reference) = rest
            .rsplit_once("(the same steps: ")
            .ok_or_else(|| format!("{at}: name the test that takes the same steps"))?;
        let reference = reference.strip_suffix(')').ok_or_else(|| format!("{at}: unclosed test reference"))?;
        if reason.trim().len() < 8 {
            return Err(format!("{at}: say why it is not run as written"));
        }
        named_test(reference.trim(), at)?;
        Ok("same steps")
    } else if let Some(reason) = marker.strip_prefix("not run here: ") {
        if reason.trim().len() < 8 {
            return Err(format!("{at}: say why it cannot run here"));
        }
        Ok("not here")
    } else {
        Err(format!("{at}: unknown marker {marker:?}"))
    }
}

#[test]
fn every_guide_snippet_is_run_by_a_test_or_says_why_not() {
    let mut problems = Vec::new();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for guide in GUIDES {
        let text = std::fs::read_to_string(root().join(guide)).unwrap_or_else(|e| panic!("{guide}: {e}"));
        let lines: Vec<&str> = text.lines().collect();
        let mut open: Option<usize> = None;
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with("```") {
                continue;
            }
            if open.take().is_some() {
                continue; // the closing fence
            }
            open = Some(i);
            let at = format!("{guide}:{}", i + 1);
            let before = if i == 0 { "" } else { lines[i - 1] };
            match check_marker(guide, before, &at) {
                Ok(kind) => *counts.entry(kind).or_default() += 1,
                Err(problem) => problems.push(problem),
            }
        }
        assert!(open.is_none(), "{guide}: a code block is not closed");
    }
    assert!(problems.is_empty(), "{} snippet markers are wrong:\n{}", problems.len(), problems.join("\n"));
    // The guides do have snippets that run, and the checker saw them (it would pass on no blocks at all otherwise).
    assert!(counts.get("run").copied().unwrap_or(0) >= 5, "{counts:?}");
    println!("guide snippets: {counts:?}");
}

#[test]
fn the_marker_checker_refuses_what_it_should() {
    let guide = "docs/players.md";
    assert!(check_marker(guide, "```", "x").is_err(), "no marker");
    assert!(check_marker(guide, "<!-- snippet: run by tests/integration/players.rs::no_such_test -->", "x").is_err());
    assert!(check_marker(guide, "<!-- snippet: run by tests/integration/nothing.rs::f -->", "x").is_err());
    assert!(check_marker(guide, "<!-- snippet: not run here: ok -->", "x").is_err(), "a reason of two letters");
    assert!(check_marker(guide, "<!-- snippet: not run verbatim: because it differs -->", "x").is_err(), "no test");
    assert!(check_marker(guide, "<!-- snippet: maybe later -->", "x").is_err());
    assert_eq!(check_marker(guide, "<!-- snippet: not run here: needs an Apple device -->", "x"), Ok("not here"));
    // A test that reads neither the guide nor the examples cannot be the one running the snippet.
    assert!(
        check_marker(guide, "<!-- snippet: run by tests/integration/rekey.rs::key_id -->", "x")
            .is_err_and(|e| e.contains("reads neither"))
    );
}

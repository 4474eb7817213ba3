//! The support audit log as the tenant reads it: every time platform staff opened this account's page, suspended or
//! resumed it, with who and why. Any role may read it; only this tenant's rows are ever queried.

use actix_web::{get, web};
use askama::Template;
use clavis_tenant::{AuditAction, Directory, Role};

use super::pages::{Page, ok, when};
use super::{Shell, SignedIn};

const ROWS: u64 = 200;

struct Row {
    at: String,
    staff_email: String,
    action: &'static str,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    shell: Shell,
    rows: Vec<Row>,
}

#[get("/console/audit")]
async fn audit_page(session: SignedIn, directory: web::Data<Directory>) -> Page {
    session.require(Role::Viewer)?;
    let rows = directory
        .staff_audit(session.tenant.id, ROWS)
        .await?
        .into_iter()
        .map(|e| Row {
            at: when(e.at),
            staff_email: e.staff_email,
            action: AuditAction::label(&e.action),
            detail: e.detail.unwrap_or_default(),
        })
        .collect();
    ok(&AuditPage { shell: session.shell(), rows })
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(audit_page);
}

//! The client's form to change their contact data (`ci_enable_client_data_change`), reached
//! from the Information tab: `/profile/data`. See [`crate::data_change`].

use std::collections::BTreeMap;

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::{Route, get, post, routes};
use serde::Serialize;

use super::core_pages::render_information;
use super::guards::{CheckedForm, CsrfField, FormRefused, SameOrigin};
use super::page::{Page, PageHtml};
use crate::data_change::{self as dc, Changes, FieldError, Outcome};
use crate::error::Error;
use crate::model::{Address, Client};

pub fn routes() -> Vec<Route> {
    routes![form, submit]
}

/// The form's fields as typed (or as stored, when it opens).
#[derive(FromForm, Serialize, Default, Debug)]
struct DataForm {
    mailing_street: Option<String>,
    mailing_city: Option<String>,
    mailing_zip: Option<String>,
    mailing_country: Option<String>,
    /// "The invoicing address is the mailing address" (a checkbox).
    invoicing_same: Option<String>,
    invoicing_street: Option<String>,
    invoicing_city: Option<String>,
    invoicing_zip: Option<String>,
    invoicing_country: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    mobile: Option<String>,
    #[serde(skip)]
    csrf: Option<String>,
}

impl CsrfField for DataForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

impl DataForm {
    fn of(c: &Client) -> DataForm {
        let inv = c.invoicing_address.clone().filter(|a| !a.is_empty());
        let s = |v: &str| Some(v.to_string());
        DataForm {
            mailing_street: s(&c.mailing_address.street),
            mailing_city: s(&c.mailing_address.city),
            mailing_zip: s(&c.mailing_address.zip),
            mailing_country: s(&c.mailing_address.country),
            invoicing_same: inv.is_none().then(|| "on".into()),
            invoicing_street: inv.as_ref().map(|a| a.street.clone()),
            invoicing_city: inv.as_ref().map(|a| a.city.clone()),
            invoicing_zip: inv.as_ref().map(|a| a.zip.clone()),
            invoicing_country: inv.as_ref().map(|a| a.country.clone()),
            email: c.email.clone(),
            phone: c.phone.clone(),
            mobile: c.mobile.clone(),
            csrf: None,
        }
    }

    /// Every field of the form as wanted values (trimmed).
    fn wanted(&self) -> Changes {
        let v = |f: &Option<String>| f.as_deref().unwrap_or("").trim().to_string();
        let same = self.invoicing_same.is_some();
        Changes {
            mailing_address: Some(Address {
                street: v(&self.mailing_street),
                city: v(&self.mailing_city),
                zip: v(&self.mailing_zip),
                country: v(&self.mailing_country),
            }),
            invoicing_address: Some((!same).then(|| Address {
                street: v(&self.invoicing_street),
                city: v(&self.invoicing_city),
                zip: v(&self.invoicing_zip),
                country: v(&self.invoicing_country),
            })),
            email: Some(v(&self.email)),
            phone: Some(v(&self.phone)),
            mobile: Some(v(&self.mobile)),
        }
    }
}

#[derive(Serialize)]
struct FormView {
    values: DataForm,
    /// Form field → its message, in the page's language.
    errors: BTreeMap<String, String>,
    error: Option<String>,
    approval: bool,
    pending: bool,
    limits: Limits,
}

#[derive(Serialize)]
struct Limits {
    street: usize,
    city: usize,
    zip: usize,
    country: usize,
    email: usize,
    phone: usize,
}

const LIMITS: Limits = Limits {
    street: dc::MAX_STREET,
    city: dc::MAX_CITY,
    zip: dc::MAX_ZIP,
    country: dc::MAX_COUNTRY,
    email: dc::MAX_EMAIL,
    phone: dc::MAX_PHONE,
};

fn render_form(
    page: &Page<'_>,
    values: DataForm,
    problems: &[FieldError],
    error: Option<String>,
    status: Status,
) -> Result<PageHtml, Error> {
    let errors = problems
        .iter()
        .map(|p| {
            (
                p.field.clone(),
                page.t_args(p.message, &[("max", p.max.to_string())]),
            )
        })
        .collect();
    let pending = dc::of_client(page.portal, page.client.id)?
        .is_some_and(|p| p.status == dc::ChangeStatus::Pending);
    let view = FormView {
        values,
        errors,
        error: error.or_else(|| (!problems.is_empty()).then(|| page.t("dc-error-summary"))),
        approval: page.flag(dc::APPROVAL),
        pending,
        limits: LIMITS,
    };
    page.render_with_status("information", "data_change.html", &view, status)
}

#[get("/profile/data")]
fn form(page: Page<'_>) -> Result<PageHtml, Error> {
    if !page.flag(dc::SETTING) {
        return Err(Error::NotFound(
            "data change (ci_enable_client_data_change is off)".into(),
        ));
    }
    // A change waiting for approval: the form shows what was asked for.
    let mut shown = page.client.clone();
    if let Some(p) = dc::of_client(page.portal, page.client.id)?
        && p.status == dc::ChangeStatus::Pending
    {
        p.changes.apply(&mut shown);
    }
    render_form(&page, DataForm::of(&shown), &[], None, Status::Ok)
}

#[post("/profile/data", data = "<form>")]
fn submit(
    page: Page<'_>,
    _same_origin: SameOrigin,
    form: Result<CheckedForm<DataForm>, FormRefused<'_>>,
) -> Result<PageHtml, Status> {
    let fail = |e: Error| {
        tracing::error!("{e}");
        Status::InternalServerError
    };
    if !page.flag(dc::SETTING) {
        return Err(Status::NotFound);
    }
    let form = match form {
        Ok(CheckedForm(f)) => f,
        Err(FormRefused::Form(e)) if e.status() != Status::PayloadTooLarge => {
            return render_form(
                &page,
                DataForm::of(&page.client),
                &[],
                Some(page.t("form-error-invalid")),
                Status::BadRequest,
            )
            .map_err(fail);
        }
        Err(refused) => return Err(refused.status()),
    };
    let wanted = form.wanted();
    let problems = dc::validate(&wanted);
    if !problems.is_empty() {
        return render_form(&page, form, &problems, None, Status::UnprocessableEntity)
            .map_err(fail);
    }
    // Only values that differ are stored, so only those count against the hourly bound.
    let differs = !Changes::between(&page.client, &wanted).is_empty();
    if differs
        && !page.portal.throttles.data_changes.allow(
            &page.client.id.to_string(),
            page.portal.clock.unix(),
            3600,
            dc::MAX_PER_HOUR,
        )
    {
        tracing::warn!(
            client = page.client.id,
            "too many data changes in an hour; refused"
        );
        return render_form(
            &page,
            form,
            &[],
            Some(page.t("dc-error-too-many")),
            Status::TooManyRequests,
        )
        .map_err(fail);
    }
    let approval = page.flag(dc::APPROVAL);
    let outcome = dc::submit(
        page.portal,
        &page.client,
        wanted,
        approval,
        page.source_addr.as_deref(),
    )
    .map_err(fail)?;
    match outcome {
        Outcome::Unchanged => {
            render_information(&page, Some(page.t("dc-unchanged")), None, Status::Ok)
        }
        Outcome::Applied(client) => {
            let page = Page {
                client: *client,
                ..page
            };
            render_information(&page, Some(page.t("dc-saved")), None, Status::Ok)
        }
        Outcome::Pending(_) => render_information(
            &page,
            Some(page.t("dc-sent-for-approval")),
            None,
            Status::Ok,
        ),
        Outcome::Vetoed(veto) => {
            let message = veto.message_in(page.lang).to_string();
            render_form(&page, form, &[], Some(message), Status::UnprocessableEntity)
        }
        Outcome::Invalid(problems) => {
            render_form(&page, form, &problems, None, Status::UnprocessableEntity)
        }
    }
    .map_err(fail)
}

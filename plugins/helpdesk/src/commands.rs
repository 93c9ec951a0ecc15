//! `portico operator …` (staff who get support requests) and `portico helpdesk …`
//! (departments, tickets, replies), run directly or through the control socket. Also the
//! demo's helpdesk.

use portico_core::plugin::{
    Client, ClientView, CommandArgs as Args, Error, OperatorCtx, Result, is_email, stamp,
};

use crate::files::size_text;
use crate::model::{self, Channel, Department, Item, Operator, State, Ticket};

const OPERATOR_USAGE: &str =
    "usage: portico operator add NAME --email E [--send-tasks-via-email] [--send-cp-requests]
       portico operator list
       portico operator remove ID";

const USAGE: &str = "usage: portico helpdesk department add NAME [--cp-requests]
       portico helpdesk department list
       portico helpdesk department set ID --cp-requests true|false
       portico helpdesk tickets [--client C] [--state open|waiting|closed] [--department D]
       portico helpdesk show ID
       portico helpdesk create --subject S --text T [--client C | --email E] [--department D] [--channel email|sms|in-person|telephone] [--author NAME]
       portico helpdesk reply ID --text T [--channel email|sms|in-person|telephone] [--department D] [--author NAME]
       portico helpdesk state ID open|waiting|closed
       portico helpdesk assign ID --client C
       portico helpdesk attachment ID --out-file F";

fn usage() -> Error {
    Error::Invalid(USAGE.into())
}

fn number(word: &str, what: &str) -> Result<u64> {
    word.trim_start_matches('#')
        .parse()
        .map_err(|_| Error::Invalid(format!("`{word}` is not a {what} number")))
}

fn now(ctx: &OperatorCtx<'_>) -> String {
    stamp(ctx.now())
}

fn one_line(text: &str, what: &str, max: usize) -> Result<String> {
    let t = text.trim();
    if t.is_empty() || t.contains(['\r', '\n']) || t.chars().count() > max {
        return Err(Error::Invalid(format!(
            "{what}: one line of 1 to {max} characters"
        )));
    }
    Ok(t.to_string())
}

// ----- operators -----

pub fn operator(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let ns = ctx.store();
    let bad = || Error::Invalid(OPERATOR_USAGE.into());
    match args.first().map(String::as_str) {
        Some("add") => {
            let a = Args::parse(
                &args[1..],
                &["--email"],
                &["--send-tasks-via-email", "--send-cp-requests"],
                OPERATOR_USAGE,
            )?;
            let [name] = a.words.as_slice() else {
                return Err(bad());
            };
            let name = one_line(name, "NAME", 100)?;
            let email = a
                .value("--email")
                .map(str::trim)
                .ok_or_else(|| Error::Invalid(format!("--email is needed\n{OPERATOR_USAGE}")))?;
            if !is_email(email) {
                return Err(Error::Invalid(format!(
                    "--email: `{email}` is not an e-mail address"
                )));
            }
            let op = model::add_operator(
                &ns,
                Operator {
                    id: 0,
                    name,
                    email: email.to_string(),
                    send_tasks_via_email: a.flag("--send-tasks-via-email"),
                    send_cp_requests: a.flag("--send-cp-requests"),
                },
            )?;
            ctx.audit(
                None,
                "operator_added",
                Some(format!("#{} {}", op.id, op.name)),
            );
            Ok(format!("added {}", operator_line(&op)))
        }
        Some("list") if args.len() == 1 => {
            let ops = model::operators(&ns)?;
            if ops.is_empty() {
                return Ok("no operators\n".into());
            }
            Ok(ops.iter().map(operator_line).collect())
        }
        Some("remove") => {
            let [_, id] = args else {
                return Err(bad());
            };
            let op = model::remove_operator(&ns, number(id, "operator")?)?;
            ctx.audit(
                None,
                "operator_removed",
                Some(format!("#{} {}", op.id, op.name)),
            );
            Ok(format!("removed {}", operator_line(&op)))
        }
        _ => Err(bad()),
    }
}

fn operator_line(o: &Operator) -> String {
    let mut flags = Vec::new();
    if o.send_tasks_via_email {
        flags.push("send tasks via e-mail");
    }
    if o.send_cp_requests {
        flags.push("send CP requests");
    }
    format!(
        "#{} {} <{}>{}\n",
        o.id,
        o.name,
        o.email,
        if flags.is_empty() {
            String::new()
        } else {
            format!(", {}", flags.join(", "))
        }
    )
}

// ----- helpdesk -----

pub fn helpdesk(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let words: Vec<&str> = args.iter().take(2).map(String::as_str).collect();
    match words.as_slice() {
        ["department", "add", ..] => department_add(ctx, &args[2..]),
        ["department", "list"] if args.len() == 2 => department_list(ctx),
        ["department", "set", ..] => department_set(ctx, &args[2..]),
        ["tickets", ..] => tickets(ctx, &args[1..]),
        ["show", ..] => show(ctx, &args[1..]),
        ["create", ..] => create(ctx, &args[1..]),
        ["reply", ..] => reply(ctx, &args[1..]),
        ["state", ..] => state(ctx, &args[1..]),
        ["assign", ..] => assign(ctx, &args[1..]),
        ["attachment", ..] => attachment(ctx, &args[1..]),
        _ => Err(usage()),
    }
}

fn department_line(d: &Department) -> String {
    format!(
        "#{} {}{}\n",
        d.id,
        d.name,
        if d.cp_requests {
            ", used for CP requests"
        } else {
            ""
        }
    )
}

fn department_add(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = Args::parse(args, &[], &["--cp-requests"], USAGE)?;
    let [name] = a.words.as_slice() else {
        return Err(usage());
    };
    let name = one_line(name, "NAME", 100)?;
    let ns = ctx.store();
    if model::departments(&ns)?.iter().any(|d| d.name == name) {
        return Err(Error::Invalid(format!(
            "there is a department `{name}` already"
        )));
    }
    let d = model::add_department(&ns, &name, a.flag("--cp-requests"))?;
    ctx.audit(
        None,
        "department_added",
        Some(department_line(&d).trim().into()),
    );
    Ok(format!("added {}", department_line(&d)))
}

fn department_list(ctx: &OperatorCtx<'_>) -> Result<String> {
    let all = model::departments(&ctx.store())?;
    if all.is_empty() {
        return Ok("no departments (the Helpdesk tab is not shown)\n".into());
    }
    let mut out: String = all.iter().map(department_line).collect();
    if !all.iter().any(|d| d.cp_requests) {
        out.push_str("no department is used for CP requests: the Helpdesk tab is not shown\n");
    }
    Ok(out)
}

fn department_set(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = Args::parse(args, &["--cp-requests"], &[], USAGE)?;
    let ([id], Some(value)) = (a.words.as_slice(), a.value("--cp-requests")) else {
        return Err(usage());
    };
    let on = match value {
        "true" | "yes" | "on" | "1" => true,
        "false" | "no" | "off" | "0" => false,
        other => {
            return Err(Error::Invalid(format!(
                "--cp-requests: `{other}` is not true or false"
            )));
        }
    };
    let d = model::set_department_cp(&ctx.store(), number(id, "department")?, on)?;
    ctx.audit(
        None,
        "department_changed",
        Some(department_line(&d).trim().into()),
    );
    Ok(department_line(&d))
}

fn client_text(ctx: &OperatorCtx<'_>, t: &Ticket) -> String {
    match t.client_id {
        Some(id) => match ctx.find_client(&format!("#{id}")) {
            Ok(c) => format!("client {} ({})", c.number, c.name),
            Err(_) => format!("client #{id} (gone)"),
        },
        None => match &t.email {
            Some(e) => format!("no client, e-mail {e}"),
            None => "no client".into(),
        },
    }
}

fn department_name(departments: &[Department], id: u64) -> String {
    departments
        .iter()
        .find(|d| d.id == id)
        .map_or_else(|| format!("#{id}"), |d| d.name.clone())
}

fn tickets(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = Args::parse(args, &["--client", "--state", "--department"], &[], USAGE)?;
    if !a.words.is_empty() {
        return Err(usage());
    }
    let ns = ctx.store();
    let client = a
        .value("--client")
        .map(|c| ctx.find_client(c))
        .transpose()?;
    let state = a
        .value("--state")
        .map(|s| {
            State::parse(s).ok_or_else(|| {
                Error::Invalid(format!("--state: `{s}` is not open, waiting or closed"))
            })
        })
        .transpose()?;
    let department = a
        .value("--department")
        .map(|d| model::find_department(&ns, d))
        .transpose()?;
    let departments = model::departments(&ns)?;
    let mut list: Vec<Ticket> = model::all_tickets(&ns)?
        .into_iter()
        .filter(|t| client.as_ref().is_none_or(|c| t.client_id == Some(c.id)))
        .filter(|t| state.is_none_or(|s| t.state == s))
        .filter(|t| department.as_ref().is_none_or(|d| t.department_id == d.id))
        .collect();
    list.sort_by(|a, b| b.updated.cmp(&a.updated).then(b.id.cmp(&a.id)));
    if list.is_empty() {
        return Ok("no tickets\n".into());
    }
    Ok(list
        .iter()
        .map(|t| {
            let tags = if t.tags.is_empty() {
                String::new()
            } else {
                format!(" [tags: {}]", t.tags.join(", "))
            };
            format!(
                "#{} {} {} \"{}\", {}, {}, {} item(s){tags}\n",
                t.id,
                t.updated,
                t.state.as_str(),
                t.subject,
                department_name(&departments, t.department_id),
                client_text(ctx, t),
                t.items.len(),
            )
        })
        .collect())
}

fn ticket_id(words: &[String]) -> Result<u64> {
    match words {
        [id] => number(id, "ticket"),
        _ => Err(usage()),
    }
}

fn show(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let id = ticket_id(args)?;
    let ns = ctx.store();
    let t = model::ticket(&ns, id)?.ok_or_else(|| Error::NotFound(format!("ticket #{id}")))?;
    let departments = model::departments(&ns)?;
    let mut out = format!(
        "ticket #{} \"{}\"\nstate: {}\ndepartment: {}\n{}\ncreated: {}, last activity: {}\ntags: {}\n",
        t.id,
        t.subject,
        t.state.as_str(),
        department_name(&departments, t.department_id),
        client_text(ctx, &t),
        t.created,
        t.updated,
        if t.tags.is_empty() {
            "none".to_string()
        } else {
            t.tags.join(", ")
        },
    );
    for item in &t.items {
        out.push_str(&format!(
            "\n#{} {} {} by {}{}, {}\n",
            item.number,
            item.at,
            item.channel.as_str(),
            item.author,
            if item.from_client { " (client)" } else { "" },
            department_name(&departments, item.department_id),
        ));
        for line in item.text.lines() {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
        for a in model::attachments_of(&ns, &item.attachments)? {
            out.push_str(&format!(
                "    attachment #{} {} ({}, {})\n",
                a.id,
                a.name,
                a.content_type,
                size_text(a.size)
            ));
        }
    }
    Ok(out)
}

fn channel_of(a: &Args) -> Result<Channel> {
    match a.value("--channel") {
        None => Ok(Channel::Email),
        Some(c) => Channel::parse(c).ok_or_else(|| {
            Error::Invalid(format!(
                "--channel: `{c}` is not email, sms, in-person or telephone"
            ))
        }),
    }
}

fn text_of(a: &Args) -> Result<String> {
    let text = a
        .value("--text")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Invalid(format!("--text is needed and not empty\n{USAGE}")))?;
    if text.chars().count() > crate::web::MAX_TEXT {
        return Err(Error::Invalid(format!(
            "--text: at most {} characters",
            crate::web::MAX_TEXT
        )));
    }
    Ok(text.replace("\r\n", "\n"))
}

/// An operator records a ticket that came another way (a mail, a call, a visit).
fn create(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = Args::parse(
        args,
        &[
            "--subject",
            "--text",
            "--client",
            "--email",
            "--department",
            "--channel",
            "--author",
        ],
        &[],
        USAGE,
    )?;
    if !a.words.is_empty() {
        return Err(usage());
    }
    let subject = one_line(
        a.value("--subject").unwrap_or(""),
        "--subject",
        crate::web::MAX_SUBJECT,
    )?;
    let text = text_of(&a)?;
    let channel = channel_of(&a)?;
    let ns = ctx.store();
    let client = a
        .value("--client")
        .map(|c| ctx.find_client(c))
        .transpose()?;
    let email = a.value("--email").map(str::trim).map(str::to_string);
    if let Some(e) = &email {
        if client.is_some() {
            return Err(Error::Invalid(
                "--client and --email do not go together (a client's replies go to their address)"
                    .into(),
            ));
        }
        if !is_email(e) {
            return Err(Error::Invalid(format!(
                "--email: `{e}` is not an e-mail address"
            )));
        }
    }
    let department = match a.value("--department") {
        Some(d) => model::find_department(&ns, d)?,
        None => model::cp_department(&ns)?
            .or(model::departments(&ns)?.into_iter().next())
            .ok_or_else(|| {
                Error::Invalid("there is no department: portico helpdesk department add".into())
            })?,
    };
    let author = match a.value("--author") {
        Some(n) => one_line(n, "--author", 100)?,
        None => client
            .as_ref()
            .map_or_else(|| email.clone().unwrap_or_default(), |c| c.name.clone()),
    };
    let at = now(ctx);
    let t = model::create_operator_ticket(
        &ns,
        Ticket {
            id: 0,
            subject,
            client_id: client.as_ref().map(|c| c.id),
            email,
            department_id: department.id,
            state: State::Open,
            created: at.clone(),
            updated: at.clone(),
            tags: Vec::new(),
            items: vec![Item {
                number: 1,
                at,
                channel,
                author,
                from_client: true,
                text,
                department_id: department.id,
                attachments: Vec::new(),
            }],
        },
    )?;
    ctx.audit(
        t.client_id,
        "ticket_recorded",
        Some(format!("ticket #{} by an operator", t.id)),
    );
    Ok(format!("created ticket #{} \"{}\"\n", t.id, t.subject))
}

fn reply(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = Args::parse(
        args,
        &["--text", "--channel", "--department", "--author"],
        &[],
        USAGE,
    )?;
    let id = ticket_id(&a.words)?;
    let text = text_of(&a)?;
    let channel = channel_of(&a)?;
    let ns = ctx.store();
    let current =
        model::ticket(&ns, id)?.ok_or_else(|| Error::NotFound(format!("ticket #{id}")))?;
    let department = match a.value("--department") {
        Some(d) => model::find_department(&ns, d)?,
        None => model::department(&ns, current.department_id)?
            .ok_or_else(|| Error::NotFound(format!("the department of ticket #{id}")))?,
    };
    let author = match a.value("--author") {
        Some(n) => one_line(n, "--author", 100)?,
        None => department.name.clone(),
    };
    let client = current
        .client_id
        .map(|c| ctx.find_client(&format!("#{c}")))
        .transpose()?;
    // An e-mail reply needs an address before anything is stored.
    let mail_to = if channel == Channel::Email {
        let to = match (&client, &current.email) {
            (Some(c), _) => c.email.clone().filter(|e| is_email(e.trim())),
            (None, Some(e)) => Some(e.clone()),
            (None, None) => None,
        };
        Some(to.ok_or_else(|| {
            Error::Invalid(format!(
                "ticket #{id} has no e-mail address to reply to (assign a client with an address, or use another --channel); nothing stored"
            ))
        })?)
    } else {
        None
    };
    let at = now(ctx);
    let (ticket, number) = model::change_ticket(&ns, id, |t| {
        if t.state == State::Closed {
            return Err(Error::Invalid(format!(
                "ticket #{id} is closed; reopen it first (portico helpdesk state {id} open); nothing stored"
            )));
        }
        let number = t.items.len() as u32 + 1;
        t.items.push(Item {
            number,
            at: at.clone(),
            channel,
            author: author.clone(),
            from_client: false,
            text: text.clone(),
            department_id: department.id,
            attachments: Vec::new(),
        });
        t.updated = at.clone();
        Ok(number)
    })?;
    let mut report = format!(
        "added item #{number} ({}) to ticket #{id}\n",
        channel.as_str()
    );
    if let Some(to) = mail_to {
        let lang = client
            .as_ref()
            .and_then(|c| c.language.clone())
            .unwrap_or_else(|| "en".into());
        let link = reply_link(ctx, &ticket)?;
        let mut body = text.clone();
        if let Some(link) = &link {
            body.push_str("\n\n");
            body.push_str(&ctx.t(&lang, "helpdesk-mail-view-conversation"));
            body.push('\n');
            body.push_str(link);
            body.push('\n');
        } else {
            body.push('\n');
        }
        let subject = format!("Re: {} [#{}]", ticket.subject, ticket.id);
        let queued = match &client {
            Some(c) => ctx.queue_mail_to_client(c, &subject, &body),
            None => ctx.queue_mail(&to, &subject, &body),
        }?;
        report.push_str(&format!(
            "e-mail #{queued} queued to {to}{}\n",
            if link.is_some() {
                ", with the link to the conversation"
            } else {
                ", without a link (see docs/helpdesk.md)"
            }
        ));
    }
    ctx.audit(
        ticket.client_id,
        "ticket_reply",
        Some(format!(
            "ticket #{id} item #{number} ({})",
            channel.as_str()
        )),
    );
    let mut event = serde_json::json!({
        "client": client.as_ref().map(ClientView::from),
        "ticket_id": id,
        "subject": ticket.subject,
        "from_client": false,
        "channel": channel.as_str(),
        "author": author,
        "text": text,
        "department": department.name,
        "sms": null,
    });
    let _ = ctx.run_hook(crate::AFTER_TICKET_REPLY, &mut event);
    if channel == Channel::Sms {
        // The SMS plugin (when built in) sends it and says so in `sms`.
        match event["sms"].as_str() {
            Some(line) => report.push_str(&format!("{}\n", one_line_of(line))),
            None => report.push_str(
                "no SMS was sent: no plugin sends SMS here (the item records one sent another way)\n",
            ),
        }
    }
    Ok(report)
}

/// A handler's line for the report: one line, without control characters, at most 300 characters.
fn one_line_of(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect()
}

/// The link to the conversation an e-mail reply ends with, when the three conditions hold: a
/// public address of the portal (`ci_url` or `ispadmin_server`), a department used for CP
/// requests, and a client on the ticket.
pub fn reply_link(ctx: &OperatorCtx<'_>, t: &Ticket) -> Result<Option<String>> {
    if t.client_id.is_none() || model::cp_department(&ctx.store())?.is_none() {
        return Ok(None);
    }
    Ok(ctx.portal_link(&format!("helpdesk/ticket/{}", t.id)))
}

fn state(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let [id, s] = args else {
        return Err(usage());
    };
    let id = number(id, "ticket")?;
    let new = State::parse(s)
        .ok_or_else(|| Error::Invalid(format!("`{s}` is not a state: open, waiting or closed")))?;
    let (t, _) = model::change_ticket(&ctx.store(), id, |t| {
        t.state = new;
        Ok(())
    })?;
    ctx.audit(
        t.client_id,
        "ticket_state",
        Some(format!("ticket #{id} {}", new.as_str())),
    );
    Ok(format!("ticket #{id} is {}\n", new.as_str()))
}

fn assign(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = Args::parse(args, &["--client"], &[], USAGE)?;
    let id = ticket_id(&a.words)?;
    let who = a.value("--client").ok_or_else(usage)?;
    let client: Client = ctx.find_client(who)?;
    let (t, _) = model::change_ticket(&ctx.store(), id, |t| {
        t.client_id = Some(client.id);
        t.email = None;
        Ok(())
    })?;
    ctx.audit(
        Some(client.id),
        "ticket_assigned",
        Some(format!("ticket #{}", t.id)),
    );
    Ok(format!(
        "ticket #{id} belongs to client {} ({})\n",
        client.number, client.name
    ))
}

/// Writes an attachment to a file the operator names.
fn attachment(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = Args::parse(args, &["--out-file"], &[], USAGE)?;
    let [id] = a.words.as_slice() else {
        return Err(usage());
    };
    let id = number(id, "attachment")?;
    let out = a.value("--out-file").ok_or_else(usage)?;
    let (meta, bytes) = model::attachment(&ctx.store(), id)?
        .ok_or_else(|| Error::NotFound(format!("attachment #{id}")))?;
    std::fs::write(out, &bytes).map_err(|e| Error::Invalid(format!("cannot write {out}: {e}")))?;
    Ok(format!(
        "wrote attachment #{id} {} ({}, {}) to {out}\n",
        meta.name,
        meta.content_type,
        size_text(meta.size)
    ))
}

/// The demo's helpdesk: a department for CP requests and a technical one, an operator who
/// gets support requests, and two tickets of alice with items of every channel.
pub fn demo(ctx: &OperatorCtx<'_>) -> Result<()> {
    let ns = ctx.store();
    let care = model::add_department(&ns, "Customer care", true)?;
    let tech = model::add_department(&ns, "Technical support", false)?;
    model::add_operator(
        &ns,
        Operator {
            id: 0,
            name: "Jana Operátorová".into(),
            email: "jana.operatorova@example.net".into(),
            send_tasks_via_email: true,
            send_cp_requests: true,
        },
    )?;
    ctx.set_own_setting(crate::REQUESTS_ENABLE, None, "on")?;
    let alice = ctx.find_client("alice")?;
    let at = |days: i64, hours: i64| {
        stamp(ctx.now() - chrono::Duration::days(days) - chrono::Duration::hours(hours))
    };
    let item = |number: u32,
                at: String,
                channel: Channel,
                author: &str,
                from_client: bool,
                text: &str,
                dep: u64| Item {
        number,
        at,
        channel,
        author: author.into(),
        from_client,
        text: text.into(),
        department_id: dep,
        attachments: Vec::new(),
    };
    let items = vec![
        item(
            1,
            at(6, 5),
            Channel::Portal,
            &alice.name,
            true,
            "My connection is very slow every evening after 8 pm. Speed tests show about 5 Mb/s instead of 100.",
            care.id,
        ),
        item(
            2,
            at(6, 2),
            Channel::Email,
            "Customer care",
            false,
            "Thank you for your report. We passed it to our technicians; they will contact you.",
            care.id,
        ),
        item(
            3,
            at(5, 6),
            Channel::Telephone,
            "Petr Technik",
            false,
            "Called the client: Wi-Fi channel congestion suspected, router restart advised.",
            tech.id,
        ),
        item(
            4,
            at(5, 3),
            Channel::Sms,
            "Technical support",
            false,
            "A technician will visit you tomorrow between 9 and 11 am.",
            tech.id,
        ),
        item(
            5,
            at(4, 4),
            Channel::InPerson,
            "Petr Technik",
            false,
            "Visit: router moved, channel changed to 36; speed 94 Mb/s measured.",
            tech.id,
        ),
        item(
            6,
            at(4, 2),
            Channel::Email,
            "Technical support",
            false,
            "The technician changed your router's settings. Please let us know if the connection is slow again.",
            tech.id,
        ),
    ];
    model::create_operator_ticket(
        &ns,
        Ticket {
            id: 0,
            subject: "Slow connection in the evening".into(),
            client_id: Some(alice.id),
            email: None,
            department_id: care.id,
            state: State::Waiting,
            created: items[0].at.clone(),
            updated: items[5].at.clone(),
            tags: vec!["speed".into()],
            items,
        },
    )?;
    let items = vec![
        item(
            1,
            at(2, 3),
            Channel::Portal,
            &alice.name,
            true,
            "Please send my invoices to my new address: Dlouhá 12, Praha 1.",
            care.id,
        ),
        item(
            2,
            at(2, 1),
            Channel::Email,
            "Customer care",
            false,
            "We changed your invoicing address. The next invoice goes there.",
            care.id,
        ),
        item(
            3,
            at(1, 8),
            Channel::Sms,
            "Customer care",
            false,
            "Your invoicing address was changed.",
            care.id,
        ),
    ];
    model::create_operator_ticket(
        &ns,
        Ticket {
            id: 0,
            subject: "Change of invoicing address".into(),
            client_id: Some(alice.id),
            email: None,
            department_id: care.id,
            state: State::Closed,
            created: items[0].at.clone(),
            updated: items[2].at.clone(),
            tags: Vec::new(),
            items,
        },
    )?;
    Ok(())
}

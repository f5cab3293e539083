//! `offboard batch FILE.csv`: one hand-over per row, as an HR workflow sends them. Every row
//! is checked before anything runs (a bad row is reported with its line number, and nothing
//! starts); rows then run a few at a time (`--parallel`), never two touching the same person
//! at once; a failed row does not stop the others; a row an earlier run finished is reported
//! as done, not run again.
//!
//! The file: UTF-8, a header row naming the columns `leaver`, `successor` (required, in any
//! order), `folder` and `options` (optional: flags of a single run, e.g.
//! `--forward-days 14 --no-lock`).

use super::CliError;
use super::args::{Cli, CommonOpts, ConnOpts, CopyOpts, DepartureOpts};
use super::exit::Exit;
use super::offboard::{Job, exit_of, settings, state_dir};
use super::summary;
use crate::config::file::load;
use crate::workflow::{self, OffboardReport, RunKind};
use clap::Parser;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::Path;

/// One row, checked.
#[derive(Debug, Clone)]
pub struct Row {
    /// Line in the file (the header is line 1).
    pub line: usize,
    /// Leaver.
    pub leaver: String,
    /// Successor.
    pub successor: String,
    /// Copy options (folder included).
    pub copy: CopyOpts,
    /// Departure options.
    pub departure: DepartureOpts,
}

/// A row that cannot run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Line in the file.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// Reads and checks the whole file; every bad row is returned, not only the first.
pub fn parse(text: &str) -> Result<Vec<Row>, Vec<BadRow>> {
    let bad = |line: usize, reason: String| BadRow { line, reason };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|x| x.to_ascii_lowercase()).collect(),
        Err(e) => return Err(vec![bad(1, format!("no header row: {e}"))]),
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(l), Some(s)) = (col("leaver"), col("successor")) else {
        return Err(vec![bad(
            1,
            format!(
                "the header must name the columns leaver and successor (it has: {})",
                headers.join(", ")
            ),
        )]);
    };
    let (f, o) = (col("folder"), col("options"));
    if let Some(unknown) = headers
        .iter()
        .find(|h| !["leaver", "successor", "folder", "options"].contains(&h.as_str()))
    {
        return Err(vec![bad(
            1,
            format!("unknown column {unknown:?} (known: leaver, successor, folder, options)"),
        )]);
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen: Vec<(String, usize)> = Vec::new();
    for rec in reader.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                errors.push(bad(line, format!("unreadable: {e}")));
                continue;
            }
        };
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("").to_string();
        let (leaver, successor) = (get(Some(l)), get(Some(s)));
        if leaver.is_empty() || successor.is_empty() {
            errors.push(bad(line, "leaver and successor are both required".into()));
            continue;
        }
        if leaver.eq_ignore_ascii_case(&successor) {
            errors.push(bad(
                line,
                format!("{leaver} is both the leaver and the successor"),
            ));
            continue;
        }
        if let Some((_, first)) = seen.iter().find(|(x, _)| x.eq_ignore_ascii_case(&leaver)) {
            errors.push(bad(line, format!("{leaver} already leaves on line {first}")));
            continue;
        }
        let options = match shell_words::split(&get(o)) {
            Ok(v) => v,
            Err(e) => {
                errors.push(bad(line, format!("options: {e}")));
                continue;
            }
        };
        let mut argv = vec![
            "offboard".to_string(),
            leaver.clone(),
            "--to".into(),
            successor.clone(),
        ];
        argv.extend(options);
        let cli = match Cli::try_parse_from(&argv) {
            Ok(c) => c,
            Err(e) => {
                let msg = e.to_string();
                errors.push(bad(
                    line,
                    format!("options: {}", msg.lines().next().unwrap_or(&msg)),
                ));
                continue;
            }
        };
        let mut copy = cli.copy;
        let folder = get(f);
        if !folder.is_empty() {
            copy.folder = Some(folder);
        }
        seen.push((leaver.clone(), line));
        rows.push(Row {
            line,
            leaver,
            successor,
            copy,
            departure: cli.departure,
        });
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(bad(1, "the file has no row".into()));
    }
    if errors.is_empty() { Ok(rows) } else { Err(errors) }
}

/// The order rows start in: the next row whose two people are free, up to `parallel` at once.
pub fn next_startable(pending: &[Row], busy: &HashSet<String>) -> Option<usize> {
    pending
        .iter()
        .position(|r| !busy.contains(&r.leaver.to_lowercase()) && !busy.contains(&r.successor.to_lowercase()))
}

/// One row's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RowOutcome {
    /// Line in the file.
    pub line: usize,
    /// Leaver.
    pub leaver: String,
    /// Successor.
    pub successor: String,
    /// `ok`, `failed`, `planned`, or `done` (an earlier run finished it).
    pub status: String,
    /// The row's exit code.
    pub exit_code: u8,
    /// The run that finished it earlier (`done`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_by: Option<String>,
    /// The error that stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The row's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<OffboardReport>,
}

/// The whole batch, for `--json`.
#[derive(Debug, serde::Serialize)]
struct BatchReport {
    file: String,
    dry_run: bool,
    rows: Vec<RowOutcome>,
    ok: usize,
    done: usize,
    failed: usize,
    exit_code: u8,
}

/// An earlier run that finished this hand-over (and was not undone since), among the
/// journals (read once per batch).
fn done_by(journals: &[workflow::runs::Journal], leaver: &str, successor: &str) -> Option<String> {
    let undone: HashSet<&str> = journals.iter().filter_map(|j| j.undoes.as_deref()).collect();
    journals.iter().rev().find_map(|j| {
        let same = |p: &Option<workflow::PersonReport>, who: &str| {
            p.as_ref()
                .is_some_and(|p| p.login.eq_ignore_ascii_case(who) || p.email.eq_ignore_ascii_case(who))
        };
        (j.kind == RunKind::Offboard
            && j.outcome == "ok"
            && same(&j.leaver, leaver)
            && same(&j.successor, successor)
            && !undone.contains(j.run_id.as_str()))
        .then(|| j.run_id.clone())
    })
}

pub(super) async fn run(
    common: &CommonOpts,
    file: &Path,
    parallel: usize,
    conn: &ConnOpts,
) -> anyhow::Result<Exit> {
    let text = std::fs::read(file)
        .map_err(|e| CliError::new(Exit::NoInput, format!("cannot read {}: {e}", file.display())))?;
    let text = String::from_utf8(text).map_err(|e| {
        CliError::new(
            Exit::Usage,
            format!(
                "{} is not UTF-8 (byte {})",
                file.display(),
                e.utf8_error().valid_up_to()
            ),
        )
        .hint("save the file as UTF-8 (LibreOffice: Save as CSV, character set Unicode UTF-8)")
    })?;
    let rows = match parse(&text) {
        Ok(r) => r,
        Err(bad) => {
            let mut msg = format!(
                "{} row(s) of {} cannot run; nothing was started:",
                bad.len(),
                file.display()
            );
            for b in &bad {
                msg.push_str(&format!("\n  line {}: {}", b.line, b.reason));
            }
            return Err(CliError::new(Exit::Usage, msg)
                .hint("columns: leaver,successor[,folder][,options] with a header row; see `offboard batch --help`")
                .into());
        }
    };
    let (cfg, _) = load(common.config.as_deref())?;
    // Every row's settings are made before anything runs: a bad flag value stops all.
    for r in &rows {
        let job = job_of(r, conn, RunKind::Offboard);
        settings(&job, &cfg, true).map_err(|e| {
            CliError::new(Exit::Usage, format!("line {}: {e}", r.line)).hint("nothing was started")
        })?;
    }
    let state = state_dir(conn, &cfg)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if common.dry_run || !common.yes {
        let plan = carry_out(&rows, conn, &cfg, &state, parallel, true, common).await;
        let code = finish_code(&plan);
        if common.dry_run || code != Exit::Ok {
            return print(common, file, true, plan, code);
        }
        if !interactive {
            let _ = print(common, file, true, plan, code);
            return Err(
                CliError::new(Exit::NeedsConfirmation, "this is the plan; nothing was changed")
                    .hint("run again with --yes to carry it out (no terminal to confirm on)")
                    .into(),
            );
        }
        let _ = print(common, file, true, plan, code);
        if !super::output::get().confirm(&format!("Carry out these {} hand-overs?", rows.len())) {
            return Ok(Exit::Ok);
        }
    }
    let outcome = carry_out(&rows, conn, &cfg, &state, parallel, false, common).await;
    let code = finish_code(&outcome);
    print(common, file, false, outcome, code)
}

fn job_of<'a>(r: &'a Row, conn: &'a ConnOpts, mode: RunKind) -> Job<'a> {
    Job {
        mode,
        leaver: r.leaver.clone(),
        successor: r.successor.clone(),
        copy: &r.copy,
        departure: Some(&r.departure),
        conn,
    }
}

fn finish_code(rows: &[RowOutcome]) -> Exit {
    if rows.iter().any(|r| r.status == "failed") {
        Exit::BatchFailed
    } else {
        Exit::Ok
    }
}

/// Runs (or plans) every row, `parallel` at a time, one run per person at a time.
async fn carry_out(
    rows: &[Row],
    conn: &ConnOpts,
    cfg: &crate::config::file::ConfigFile,
    state: &Path,
    parallel: usize,
    dry_run: bool,
    common: &CommonOpts,
) -> Vec<RowOutcome> {
    let mut pending: Vec<Row> = rows.to_vec();
    let mut busy: HashSet<String> = HashSet::new();
    let mut running = FuturesUnordered::new();
    let mut out: Vec<RowOutcome> = Vec::new();
    let live = !common.json && std::io::stderr().is_terminal();
    let journals: Vec<workflow::runs::Journal> =
        workflow::runs::all(state).into_iter().map(|(_, j)| j).collect();
    loop {
        while running.len() < parallel.max(1) {
            let Some(i) = next_startable(&pending, &busy) else {
                break;
            };
            let row = pending.remove(i);
            if let Some(run) = done_by(&journals, &row.leaver, &row.successor) {
                out.push(RowOutcome {
                    line: row.line,
                    leaver: row.leaver.clone(),
                    successor: row.successor.clone(),
                    status: "done".into(),
                    exit_code: 0,
                    done_by: Some(run),
                    error: None,
                    report: None,
                });
                continue;
            }
            let job = job_of(&row, conn, RunKind::Offboard);
            // Checked for every row before anything ran; kept as a failed row if it fails now.
            let s = match settings(&job, cfg, dry_run) {
                Ok(s) => s,
                Err(e) => {
                    out.push(RowOutcome {
                        line: row.line,
                        leaver: row.leaver.clone(),
                        successor: row.successor.clone(),
                        status: "failed".into(),
                        exit_code: super::exit::classify(&e).code(),
                        done_by: None,
                        error: Some(e.to_string()),
                        report: None,
                    });
                    continue;
                }
            };
            busy.insert(row.leaver.to_lowercase());
            busy.insert(row.successor.to_lowercase());
            if live {
                crate::errln!(
                    "line {:>3}  {} → {}: started",
                    row.line,
                    row.leaver,
                    row.successor
                );
            }
            running.push(async move {
                let mut quiet = summary::Printer::new(false);
                let interrupt = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                let o = workflow::run(&s, &mut quiet, interrupt).await;
                (row, o)
            });
        }
        let Some((row, o)) = running.next().await else {
            break;
        };
        busy.remove(&row.leaver.to_lowercase());
        busy.remove(&row.successor.to_lowercase());
        let code = exit_of(&o);
        let status = if code != Exit::Ok {
            "failed"
        } else if dry_run {
            "planned"
        } else {
            "ok"
        };
        if live {
            crate::errln!(
                "line {:>3}  {} → {}: {status} (exit {})",
                row.line,
                row.leaver,
                row.successor,
                code.code()
            );
        }
        let mut report = o.report;
        report.exit_code = Some(code.code());
        out.push(RowOutcome {
            line: row.line,
            leaver: row.leaver,
            successor: row.successor,
            status: status.into(),
            exit_code: code.code(),
            done_by: None,
            error: o.error.map(|e| {
                let mut m = e.to_string();
                let mut c = std::error::Error::source(&e);
                while let Some(x) = c {
                    m.push_str(&format!(": {x}"));
                    c = x.source();
                }
                m
            }),
            report: Some(report),
        });
    }
    out.sort_by_key(|r| r.line);
    out
}

fn print(
    common: &CommonOpts,
    file: &Path,
    dry_run: bool,
    rows: Vec<RowOutcome>,
    code: Exit,
) -> anyhow::Result<Exit> {
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let (ok, done, failed) = (count("ok") + count("planned"), count("done"), count("failed"));
    if common.json {
        let doc = BatchReport {
            file: file.display().to_string(),
            dry_run,
            ok,
            done,
            failed,
            exit_code: code.code(),
            rows,
        };
        crate::outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        crate::outln!(
            "{:<5} {:<24} {:<24} {:<8} {:>4}  DETAIL",
            "LINE",
            "LEAVER",
            "SUCCESSOR",
            "STATUS",
            "EXIT"
        );
        for r in &rows {
            let detail = match (&r.done_by, &r.error, &r.report) {
                (Some(run), _, _) => format!("finished by run {run}"),
                (_, Some(e), _) => e.clone(),
                (_, _, Some(rep)) => {
                    let copied = rep.copy.as_ref().map(|c| c.copied()).unwrap_or(0);
                    format!(
                        "run {}: {copied} message(s) {}, {} change(s)",
                        rep.run_id,
                        if dry_run { "to copy" } else { "copied" },
                        rep.changes.len()
                    )
                }
                _ => String::new(),
            };
            crate::outln!(
                "{:<5} {:<24} {:<24} {:<8} {:>4}  {detail}",
                r.line,
                r.leaver,
                r.successor,
                r.status,
                r.exit_code
            );
        }
        crate::outln!(
            "\n{} row(s): {ok} {}, {done} already done, {failed} failed",
            rows.len(),
            if dry_run { "planned" } else { "done now" }
        );
    }
    if code != Exit::Ok && !common.json {
        return Err(CliError::new(code, format!("{failed} row(s) failed (see the table)")).into());
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_row_is_named_by_its_line() {
        let text = "leaver,successor,folder,options\n\
                    bertrand,nathalie,,\n\
                    ,nathalie,,\n\
                    marc,marc,,\n\
                    bertrand,helene,,\n\
                    lea,paul,,--no-such-flag\n\
                    zoe,paul,,\"--forward-days 14 --no-lock\"\n";
        let bad = parse(text).unwrap_err();
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6], "{bad:?}");
        assert!(bad[2].reason.contains("line 2"), "{bad:?}");
        assert!(bad[3].reason.contains("--no-such-flag"), "{bad:?}");
        assert_eq!(
            parse("leaver,successor\n").unwrap_err()[0].reason,
            "the file has no row"
        );
    }

    #[test]
    fn rows_take_their_folder_and_options_in_any_column_order() {
        let rows = parse("successor,leaver,options,folder\nnathalie,bertrand,--forward-days 14 --no-lock,Archives de Bertrand\n").unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(
            (r.leaver.as_str(), r.successor.as_str(), r.line),
            ("bertrand", "nathalie", 2)
        );
        assert_eq!(r.copy.folder.as_deref(), Some("Archives de Bertrand"));
        assert_eq!(r.departure.forward_days, Some(14));
        assert!(r.departure.no_lock);
        assert!(
            parse("leaver,boss\nb,n\n").unwrap_err()[0]
                .reason
                .contains("successor")
        );
    }

    #[test]
    fn no_two_rows_touching_one_person_run_at_once() {
        let rows = parse("leaver,successor\na,n\nb,n\nc,d\nn,e\n").unwrap();
        let mut busy = HashSet::new();
        assert_eq!(next_startable(&rows, &busy), Some(0));
        busy.insert("a".to_string());
        busy.insert("n".to_string());
        // b→n and n→e wait for n; c→d can go.
        assert_eq!(next_startable(&rows[1..], &busy), Some(1));
        let only_n = parse("leaver,successor\nb,n\nn,e\n").unwrap();
        assert_eq!(next_startable(&only_n, &busy), None);
    }
}

//! Bulk requests: many independent lines in one request, each reported on its own.
//!
//! Lines that write the same stream run one after the other in request order (a receipt
//! before the transfer that ships it, an upsert before the deactivation that follows it);
//! lines of different streams run concurrently, bounded. A line ends decided (accepted or
//! refused) or with a failure whose outcome is unknown (a store error): one unknown outcome
//! fails the whole request unrecorded, so that its retry goes through recovery (see
//! [`super::idempotency`]), and the stream's later lines are not run before it is known.

use super::idempotency::KeyStreams;
use super::problem::{Answer, LineError, Problem};
use crate::aggregate::{fold_stream_noting, Decoder, FoldError};
use crate::store::{DynEventStore, Position};
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use uuid::Uuid;

/// How a decided line ended. `detail` is what an accepted line reports (flattened into the
/// line's answer, e.g. `{"levels": …}`).
#[derive(Clone, Debug)]
pub enum LineOutcome<T> {
    Accepted {
        detail: T,
        position: Option<Position>,
    },
    Rejected(LineError),
}

/// Runs line `i` with `run(i)` for every line whose `keys[i]` is `Some` (the stream it
/// writes), in request order per key and concurrently across keys (at most `concurrency`
/// keys at once). The result has one entry per line: `None` where the key was `None` (the
/// caller reports those lines itself). The first failure fails the whole request.
pub async fn run_in_stream_order<K, O, F, Fut>(
    keys: Vec<Option<K>>,
    concurrency: usize,
    run: F,
) -> Result<Vec<Option<O>>, Problem>
where
    K: Hash + Eq,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<O, Problem>>,
{
    let count = keys.len();
    let mut groups: HashMap<K, Vec<usize>> = HashMap::new();
    for (index, key) in keys.into_iter().enumerate() {
        if let Some(key) = key {
            groups.entry(key).or_default().push(index);
        }
    }
    let run = &run;
    let results: Vec<Vec<(usize, Result<O, Problem>)>> =
        futures::stream::iter(groups.into_values().map(|indexes| async move {
            let mut done = Vec::with_capacity(indexes.len());
            for index in indexes {
                let outcome = run(index).await;
                let failed = outcome.is_err();
                done.push((index, outcome));
                // The stream's next lines wait for the retry: running them now would decide
                // them before a line whose outcome is unknown.
                if failed {
                    break;
                }
            }
            done
        }))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut outcomes: Vec<Option<O>> = std::iter::repeat_with(|| None).take(count).collect();
    for (index, result) in results.into_iter().flatten() {
        outcomes[index] = Some(result?);
    }
    Ok(outcomes)
}

/// Runs the lines of a request (see the module docs): a line `applied` holds (found by
/// [`recover_lines`]) is reported from there, a line that did not parse is reported as
/// rejected, every other line runs with `run(index, line)`, in request order per
/// `stream_of(line)`. One entry per line, in request order.
pub async fn run_lines<'a, L, K, T, F, Fut>(
    lines: &'a [Result<L, LineError>],
    stream_of: impl Fn(&'a L) -> K,
    applied: &HashMap<usize, LineOutcome<T>>,
    concurrency: usize,
    run: F,
) -> Result<Vec<Option<LineOutcome<T>>>, Problem>
where
    K: Hash + Eq,
    T: Clone,
    F: Fn(usize, &'a L) -> Fut,
    Fut: Future<Output = Result<LineOutcome<T>, Problem>>,
{
    let keys = lines
        .iter()
        .map(|line| line.as_ref().ok().map(&stream_of))
        .collect();
    let run = &run;
    let mut outcomes = run_in_stream_order(keys, concurrency, |index| async move {
        match (applied.get(&index), &lines[index]) {
            (Some(found), _) => Ok(found.clone()),
            (None, Ok(line)) => run(index, line).await,
            (None, Err(e)) => Ok(LineOutcome::Rejected(e.clone())),
        }
    })
    .await?;
    for (index, line) in lines.iter().enumerate() {
        if let Err(e) = line {
            outcomes[index] = Some(LineOutcome::Rejected(e.clone()));
        }
    }
    Ok(outcomes)
}

/// Recovery of an abandoned request ([`super::idempotency`]): the lines whose events an
/// earlier attempt appended, found by their causation ids in the streams they write
/// (`stream_of`: `None` for a line whose target is malformed, which appended nothing), each
/// with `report(state right after its events)` and the position of its last event. Reads each
/// stream once.
#[allow(clippy::too_many_arguments)] // each is one thing the caller knows and recovery needs
pub async fn recover_lines<L, S: Default, E, T>(
    store: &DynEventStore,
    keys: &KeyStreams,
    request: Uuid,
    lines: &[Result<L, LineError>],
    stream_of: impl Fn(&L) -> Option<String>,
    decode: Decoder<E>,
    apply: fn(&mut S, &E),
    report: impl Fn(&S) -> T,
) -> Result<HashMap<usize, LineOutcome<T>>, FoldError> {
    let mut by_stream: HashMap<String, HashMap<Uuid, usize>> = HashMap::new();
    for (index, line) in lines.iter().enumerate() {
        if let Some(stream) = line.as_ref().ok().and_then(&stream_of) {
            by_stream
                .entry(stream)
                .or_default()
                .insert(keys.line_causation_id(request, index), index);
        }
    }
    let mut found = HashMap::new();
    for (stream, causes) in by_stream {
        let noted = |index: usize, state: &S, position: Position| {
            found.insert(
                index,
                LineOutcome::Accepted {
                    detail: report(state),
                    position: Some(position),
                },
            );
        };
        fold_stream_noting(store, &stream, decode, apply, &causes, noted).await?;
    }
    Ok(found)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BulkAnswer<T> {
    accepted: usize,
    rejected: usize,
    /// The highest position any line reached (`atLeast` for reads); `null` if none wrote.
    position: Option<String>,
    lines: Vec<BulkLineAnswer<T>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BulkLineAnswer<T> {
    index: usize,
    status: &'static str,
    #[serde(flatten)]
    detail: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<LineError>,
}

/// The bulk answer: 200 `{accepted, rejected, position, lines: [{index, status, <detail>?,
/// error?}]}` with one line per request line, in request order. A line without an outcome is
/// a bug and answers 500.
pub fn bulk_answer<T: Serialize>(
    outcomes: Vec<Option<LineOutcome<T>>>,
) -> Result<Answer, serde_json::Error> {
    let mut answer = BulkAnswer {
        accepted: 0,
        rejected: 0,
        position: None,
        lines: Vec::with_capacity(outcomes.len()),
    };
    let mut highest: Option<Position> = None;
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let line = match outcome {
            Some(LineOutcome::Accepted { detail, position }) => {
                answer.accepted += 1;
                highest = highest.max(position);
                BulkLineAnswer {
                    index,
                    status: "ACCEPTED",
                    detail: Some(detail),
                    error: None,
                }
            }
            Some(LineOutcome::Rejected(e)) => {
                answer.rejected += 1;
                BulkLineAnswer {
                    index,
                    status: "REJECTED",
                    detail: None,
                    error: Some(e),
                }
            }
            None => return Ok(Problem::new(500, "INTERNAL", "a bulk line has no outcome").answer()),
        };
        answer.lines.push(line);
    }
    answer.position = highest.map(|p| p.to_string());
    Answer::json(200, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Detail {
        n: u32,
    }

    #[test]
    fn bulk_answers_count_and_flatten() {
        let answer = bulk_answer(vec![
            Some(LineOutcome::Accepted {
                detail: Detail { n: 7 },
                position: Some(Position::sequence(3)),
            }),
            Some(LineOutcome::Rejected(LineError {
                code: "INVALID_INPUT",
                field: Some("qty".into()),
                message: "bad".into(),
            })),
        ])
        .unwrap();
        assert_eq!(answer.status, 200);
        let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(json["accepted"], 1);
        assert_eq!(json["rejected"], 1);
        assert_eq!(json["lines"][0]["n"], 7);
        assert!(json["lines"][0].get("error").is_none());
        assert_eq!(json["lines"][1]["error"]["field"], "qty");
        assert!(json["position"].is_string());
        assert_eq!(bulk_answer::<Detail>(vec![None]).unwrap().status, 500);
    }

    #[tokio::test]
    async fn lines_of_one_key_run_in_order_and_stop_at_a_failure() {
        let order = std::sync::Mutex::new(Vec::new());
        let keys = vec![Some("a"), Some("b"), None, Some("a"), Some("a")];
        let result = run_in_stream_order(keys.clone(), 4, |i| {
            let order = &order;
            async move {
                order.lock().unwrap().push(i);
                Ok::<_, Problem>(i * 10)
            }
        })
        .await
        .unwrap();
        assert_eq!(result, vec![Some(0), Some(10), None, Some(30), Some(40)]);
        let seen = order.lock().unwrap().clone();
        let a: Vec<usize> = seen.into_iter().filter(|i| [0, 3, 4].contains(i)).collect();
        assert_eq!(a, vec![0, 3, 4]);

        let ran = std::sync::Mutex::new(Vec::new());
        let failed = run_in_stream_order(keys, 4, |i| {
            let ran = &ran;
            async move {
                ran.lock().unwrap().push(i);
                if i == 3 {
                    Err(Problem::new(503, "INTERNAL", "unknown"))
                } else {
                    Ok(i)
                }
            }
        })
        .await;
        assert_eq!(failed.unwrap_err().status, 503);
        assert!(
            !ran.lock().unwrap().contains(&4),
            "not run after an unknown outcome"
        );
    }
}

//! What supervisors and workers log through `tracing`, captured for
//! tests (feature `tracing`): each event with its fields and the spans it
//! was logged in.
//!
//! Supervisors log on threads of their own, so a subscriber set for the
//! test's thread alone would miss most of it: [`capture`] installs a
//! process-wide one (once per test binary) that keeps everything, and
//! tests pick their supervisor's lines out by its (unique) name. Built on
//! `tracing-subscriber`'s registry, the standard way to follow spans
//! across threads, with a small layer that keeps the fields.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Fields by name, their values as text (strings without quotes).
pub type Fields = BTreeMap<String, String>;

/// One span an event was logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRecord {
    /// The span's name.
    pub name: String,
    /// Its fields.
    pub fields: Fields,
}

/// One event, as it was logged.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Its level.
    pub level: Level,
    /// Its target.
    pub target: String,
    /// Its message.
    pub message: String,
    /// Its other fields.
    pub fields: Fields,
    /// The spans it was logged in, innermost first.
    pub spans: Vec<SpanRecord>,
}

impl Logged {
    /// The field `name`, if the event has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The innermost span named `name` it was logged in.
    pub fn span(&self, name: &str) -> Option<&SpanRecord> {
        self.spans.iter().find(|s| s.name == name)
    }
}

/// The captured log; see [`capture`].
#[derive(Clone)]
pub struct Capture {
    logged: Arc<Mutex<Vec<Logged>>>,
}

impl Capture {
    /// Everything logged so far, in order.
    pub fn all(&self) -> Vec<Logged> {
        self.logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What was logged with the field `field` equal to `value`, in order.
    pub fn with_field(&self, field: &str, value: &str) -> Vec<Logged> {
        self.all()
            .into_iter()
            .filter(|l| l.field(field) == Some(value))
            .collect()
    }
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.logged.lock().map_or(0, |l| l.len());
        f.debug_struct("Capture").field("logged", &n).finish()
    }
}

/// Installs the capturing subscriber as the process's (once; every call
/// returns the same capture), at every level.
///
/// ```
/// let capture = worker_testing::traces::capture();
/// let span = tracing::info_span!("job", id = 7);
/// std::thread::spawn(move || span.in_scope(|| tracing::info!(step = "one", "doc-traces")))
///     .join()
///     .unwrap();
/// let logged = capture.with_field("step", "one");
/// let line = logged.iter().find(|l| l.message == "doc-traces").unwrap();
/// assert_eq!(line.span("job").unwrap().fields["id"], "7");
/// ```
///
/// # Panics
///
/// If another process-wide subscriber was installed first.
pub fn capture() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture {
                logged: Arc::default(),
            };
            let layer = CaptureLayer(capture.logged.clone());
            let subscriber = tracing_subscriber::registry().with(layer);
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other process-wide subscriber is installed");
            capture
        })
        .clone()
}

struct CaptureLayer(Arc<Mutex<Vec<Logged>>>);

struct Visitor<'a> {
    fields: &'a mut Fields,
    message: Option<&'a mut String>,
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Visitor<'_> {
    fn put(&mut self, field: &Field, value: String) {
        match (&mut self.message, field.name()) {
            (Some(message), "message") => **message = value,
            _ => {
                self.fields.insert(field.name().to_owned(), value);
            }
        }
    }
}

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Visitor {
            fields: &mut fields,
            message: None,
        });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(&mut Visitor {
                    fields,
                    message: None,
                });
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        let mut message = String::new();
        event.record(&mut Visitor {
            fields: &mut fields,
            message: Some(&mut message),
        });
        let spans = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .map(|span| SpanRecord {
                        name: span.name().to_owned(),
                        fields: span
                            .extensions()
                            .get::<Fields>()
                            .cloned()
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let logged = Logged {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            message,
            fields,
            spans,
        };
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(logged);
    }
}

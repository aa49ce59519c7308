//! The page and what it loads, compiled into the binary: the machine that
//! watches may have no internet, so nothing comes from elsewhere.

/// The page: the tree, the graph, links to the raw endpoints.
pub(crate) const INDEX_HTML: &str = include_str!("assets/index.html");
/// Polls `/tree.json` and `/graph.svg` and redraws the page.
pub(crate) const SCRIPT: &str = include_str!("assets/observer.js");
/// The page's style: one colour per health.
pub(crate) const STYLE: &str = include_str!("assets/observer.css");

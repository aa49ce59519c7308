//! The dependency graph as a picture: the engine's DOT, laid out and
//! rendered to SVG by [`layout-rs`](layout), in pure Rust.
//!
//! Why layout-rs: it reads the DOT the engine already exports (so the
//! picture is exactly `/graph.dot`, colours included) and lays it out with
//! the same layered (Sugiyama) method as Graphviz's `dot`, with no `dot`
//! binary to install and no C library to link; it has no dependencies of
//! its own. The crates that call Graphviz need it installed, and a layout
//! written here would be one more thing to get wrong.

use layout::backends::svg::SVGWriter;
use layout::gv::{DotParser, GraphBuilder};
use worker_core::{Error, catch_panic};

/// Why a graph could not be drawn.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    /// The DOT text did not parse.
    #[error("the graph is not valid DOT: {0}")]
    Parse(String),
    /// The layout failed (layout-rs panics on some inputs; the panic is
    /// caught and reported here).
    #[error("laying the graph out failed: {0}")]
    Layout(Error),
}

/// What is drawn for a graph without nodes (layout-rs cannot lay out an
/// empty graph).
pub const EMPTY_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"220\" height=\"40\" \
viewBox=\"0 0 220 40\"><text x=\"10\" y=\"25\" font-family=\"sans-serif\" font-size=\"14\">\
no manifolds installed</text></svg>";

/// Lays `dot` out and renders it as an SVG document.
///
/// ```
/// use worker_examples::agent::observer::graph::svg;
///
/// let picture = svg("digraph { a [shape=box, style=filled, fillcolor=palegreen]; a -> b; }")?;
/// assert!(picture.contains("<svg") && picture.contains(">a</tspan>"));
/// # Ok::<(), worker_examples::agent::observer::graph::GraphError>(())
/// ```
pub fn svg(dot: &str) -> Result<String, GraphError> {
    let ast = DotParser::new(dot).process().map_err(GraphError::Parse)?;
    catch_panic(
        || "laying out the dependency graph".into(),
        || {
            let mut builder = GraphBuilder::new();
            builder.visit_graph(&ast);
            let mut graph = builder.get();
            if graph.num_nodes() == 0 {
                return Ok(EMPTY_SVG.to_owned());
            }
            let mut writer = SVGWriter::new();
            graph.do_it(false, false, false, &mut writer);
            Ok(writer.finalize())
        },
    )
    .map_err(GraphError::Layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_their_names_and_colours() {
        let picture = svg(concat!(
            "digraph engine {\n  rankdir=LR;\n  node [shape=box, style=filled];\n",
            "  \"config\" [fillcolor=palegreen, tooltip=\"started\"];\n",
            "  \"a<b\" [fillcolor=salmon];\n  \"config\" -> \"a<b\";\n}\n"
        ))
        .unwrap();
        assert!(picture.contains("<svg"), "{picture}");
        assert!(picture.contains(">config</tspan>"), "{picture}");
        // Names are escaped, so a name cannot break the document.
        assert!(picture.contains(">a&lt;b</tspan>"), "{picture}");
        assert!(picture.contains("#98fb98"), "palegreen is drawn: {picture}");
        assert!(picture.contains("#fa8072"), "salmon is drawn: {picture}");
    }

    #[test]
    fn an_empty_graph_is_a_picture_that_says_so() {
        let picture = svg("digraph engine {\n  rankdir=LR;\n}\n").unwrap();
        assert_eq!(picture, EMPTY_SVG);
    }

    #[test]
    fn bad_dot_is_a_parse_error() {
        assert!(matches!(svg("graph? no"), Err(GraphError::Parse(_))));
    }
}

// Package reports renders a lockstep.Result as text (coloured on a terminal),
// versioned JSON, JUnit XML, a self-contained HTML page or Markdown for a pull
// request comment. Renderers decide nothing: they show what the Result says.
package reports

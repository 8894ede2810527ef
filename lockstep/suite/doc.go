// Package suite runs many lockstep scenarios as one suite: scenario files,
// directories, globs or a suite file whose matrix expands a template
// scenario over guest fields. It runs them in parallel, picks a stable
// shard of them for one CI runner, writes a schema-versioned JSON index
// next to each scenario's reports, and merges the indexes of several
// shards into one JUnit file, one Markdown summary and one HTML page.
package suite

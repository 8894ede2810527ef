package suite

import (
	"html/template"
	"io"
	"slices"
)

var indexHTML = template.Must(template.New("index").Funcs(template.FuncMap{
	"icon":  func(s Status) string { return statusIcon[s] },
	"first": firstText,
	"formats": func(r ScenarioResult) []string {
		var out []string
		for f := range r.Reports {
			out = append(out, f)
		}
		slices.Sort(out)
		return out
	},
	"counts": countsText,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lockstep suite {{.Suite}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.passed{background:#e6ffe6}.failed{background:#ffe6e6}.infra,.scenario,.missing{background:#fff5d6}.skipped{background:#eee}</style></head>
<body><h1>lockstep suite {{.Suite}}: {{if .Passed}}passed{{else}}failed{{end}}</h1>
<p>{{len .Planned}} scenarios: {{counts .}}</p>
{{range .Notes}}<p><em>{{.}}</em></p>
{{end}}<table><tr><th>status</th><th>scenario</th><th>outcome</th><th>expect</th><th>first divergence or error</th><th>time</th><th>reports</th></tr>
{{range .Results}}<tr class="{{.Status}}"><td>{{icon .Status}} {{.Status}}</td>
<td>{{with index .Reports "html"}}<a href="{{.}}">{{end}}{{.Name}}{{with index .Reports "html"}}</a>{{end}}</td>
<td>{{.Outcome}}</td><td>{{.Expect}}</td><td>{{first .}}</td><td>{{.Duration}}</td>
<td>{{$r := .}}{{range formats .}}<a href="{{index $r.Reports .}}">{{.}}</a> {{end}}</td></tr>
{{end}}</table></body></html>
`))

// RenderHTML writes an index page for x: one row per scenario with its
// verdict, first divergence and links to its reports.
func RenderHTML(w io.Writer, _ string, x *Index) error {
	return indexHTML.Execute(w, x)
}

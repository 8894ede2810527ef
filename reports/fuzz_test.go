package reports

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadJSON feeds arbitrary documents to ReadJSON; whatever it accepts
// must render in every format and survive a JSON round trip unchanged.
func FuzzReadJSON(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"schema":"lockstep.result/v1","divergences":[{"kind":"memory","sync":0,"memory":{"rows":[{"offset":0,"a":"0","b":"zz1","diff":[true,true,true]}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, format := range Formats {
			for _, opt := range []Options{{}, {Color: true, Verbose: true}} {
				if err := Render(io.Discard, format, r, opt); err != nil {
					t.Fatalf("Render %s of an accepted document: %v", format, err)
				}
			}
		}
		var a bytes.Buffer
		if err := Render(&a, FormatJSON, r, Options{}); err != nil {
			t.Fatal(err)
		}
		back, err := ReadJSON(bytes.NewReader(a.Bytes()))
		if err != nil {
			t.Fatalf("ReadJSON of rendered JSON: %v", err)
		}
		var b bytes.Buffer
		if err := Render(&b, FormatJSON, back, Options{}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("JSON round trip changed the document:\n%s\n---\n%s", a.Bytes(), b.Bytes())
		}
	})
}

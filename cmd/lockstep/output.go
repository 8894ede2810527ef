package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lockstep-dev/lockstep/reports"
)

// maxNameBytes is the longest file name most file systems take (NAME_MAX).
const maxNameBytes = 255

// checkOutput checks, before anything is started, that the reports of a
// run can be written: dir is (or can be made) a writable directory, and
// base with each format's extension is a valid file name in it. A run
// takes minutes and many QEMU starts; finding out afterwards that its
// results cannot be kept loses them.
func checkOutput(dir, base string, formats []reports.Format) error {
	if err := checkReportName(base, formats); err != nil {
		return err
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("-o %s: not a directory", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("-o %s: %w", dir, err)
	}
	for _, f := range formats {
		if err := probeWrite(filepath.Join(dir, base+f.Ext())); err != nil {
			return fmt.Errorf("-o %s: cannot write reports: %w", dir, err)
		}
	}
	return nil
}

// checkReportName checks that base, the scenario's name, makes a file name
// for every format.
func checkReportName(base string, formats []reports.Format) error {
	longest := 0
	for _, f := range formats {
		longest = max(longest, len(f.Ext()))
	}
	switch {
	case base == "" || base == "." || base == "..":
		return fmt.Errorf("scenario name %q cannot name the report files; rename the scenario", base)
	case strings.ContainsAny(base, "/\\\x00"):
		return fmt.Errorf("scenario name %q cannot name the report files (it has a '/', '\\' or NUL); rename the scenario", base)
	case len(base)+longest > maxNameBytes:
		return fmt.Errorf("scenario name is %d bytes, too long to name the report files (at most %d); rename the scenario",
			len(base), maxNameBytes-longest)
	}
	return nil
}

// probeWrite checks that path can be written, without truncating a file
// already there and without leaving behind one that was not.
func probeWrite(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		fi, serr := os.Stat(path)
		if serr != nil {
			return serr
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", path)
		}
		f, err = os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		return f.Close()
	}
	if err != nil {
		return err
	}
	cerr := f.Close()
	if rerr := os.Remove(path); rerr != nil {
		return rerr
	}
	return cerr
}

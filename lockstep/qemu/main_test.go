package qemu_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
)

// The test binary doubles as a fake QEMU and as a child process for the
// signal test, selected by this environment variable.
const helperEnv = "LOCKSTEP_QEMU_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "fake-qemu":
		os.Exit(fakeQEMU(os.Args[1:]))
	case "signal-child":
		os.Exit(signalChild())
	}
	os.Exit(m.Run())
}

// fakeBinary writes a wrapper script that runs this test binary as a fake
// QEMU in the given mode:
//
//	ok        serve QMP; exit 0 on quit
//	stubborn  serve QMP but ignore quit and SIGTERM; spawn `sleep` in the
//	          process group and write its pid to childFile
//	fail      write an error to stderr and exit 1 at once
//	silent    never open the QMP socket; sleep
func fakeBinary(t *testing.T, mode, childFile string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fake-qemu")
	script := fmt.Sprintf("#!/bin/sh\n%s=fake-qemu FAKE_MODE=%s FAKE_CHILD=%s exec %s \"$@\"\n",
		helperEnv, mode, qemu.Quote([]string{childFile}), qemu.Quote([]string{exe}))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func fakeQEMU(args []string) int {
	mode := os.Getenv("FAKE_MODE")
	switch mode {
	case "fail":
		fmt.Fprintln(os.Stderr, "fake-qemu: -machine bogus: unsupported machine type")
		return 1
	case "silent":
		time.Sleep(time.Minute)
		return 2
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		child := exec.Command("sleep", "300")
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		if err := os.WriteFile(os.Getenv("FAKE_CHILD"), []byte(strconv.Itoa(child.Process.Pid)), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
	}
	var sock string
	for k, a := range args {
		if a == "-qmp" && k+1 < len(args) {
			v := strings.TrimPrefix(args[k+1], "unix:")
			v = strings.ReplaceAll(v, ",,", "\x00")
			v, _, _ = strings.Cut(v, ",")
			sock = strings.ReplaceAll(v, "\x00", ",")
		}
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake-qemu:", err)
		return 4
	}
	deadline := time.After(2 * time.Minute) // never outlive a broken test
	conns := make(chan net.Conn)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	quit := make(chan struct{}, 1)
	for {
		select {
		case c := <-conns:
			go serveFake(c, mode, quit)
		case <-quit:
			return 0
		case <-deadline:
			return 5
		}
	}
}

func serveFake(c net.Conn, mode string, quit chan<- struct{}) {
	defer c.Close()
	w := bufio.NewWriter(c)
	r := bufio.NewReader(c)
	fmt.Fprintln(w, greeting)
	w.Flush()
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var req struct {
			Execute string          `json:"execute"`
			ID      json.RawMessage `json:"id"`
		}
		if json.Unmarshal(line, &req) != nil {
			return
		}
		ret := `{}`
		if req.Execute == "query-version" {
			ret = `{"qemu": {"micro": 0, "minor": 0, "major": 99}, "package": "fake"}`
		}
		fmt.Fprintf(w, `{"return": %s, "id": %s}`+"\n", ret, req.ID)
		w.Flush()
		if req.Execute == "quit" && mode == "ok" {
			quit <- struct{}{}
		}
	}
}

// signalChild starts a real QEMU owned by context.Background (so only the
// signal path can kill it), installs HandleSignals, prints the pid and
// waits for SIGINT. It then reports whether QEMU exited before Close.
func signalChild() int {
	ctx, stop := qemu.HandleSignals(context.Background())
	defer stop()
	inst, err := qemu.Start(context.Background(), qemu.Spec{Arch: "x86_64", Machine: "pc", Accel: "tcg", Memory: "32M"}, qemu.Options{Name: "sigchild"})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("pid", inst.Pid)
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		fmt.Println("no signal")
	}
	select {
	case <-inst.Exited():
		fmt.Println("qemu exited")
	case <-time.After(10 * time.Second):
		fmt.Println("qemu alive")
	}
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	inst.Close(cctx)
	return 0
}

// Package dashboardtest runs the dashboard's browser test: headless
// Chromium (Debian's chromium package, /usr/bin/chromium) driven by
// playwright-core through testdata/dashboard/browser.mjs at the module
// root, against a hub the test has started.
//
//	srv := httptest.NewServer(hubHandler)
//	dashboardtest.Run(t, dashboardtest.Options{
//		BaseURL:  srv.URL,
//		FileName: "notes/plan.md",
//		Change:   func(t testing.TB) { writeFile(t, "notes/plan.md") },
//	})
//
// Install the browser and playwright-core with .ci/install-browser (or
// apt-get install chromium; cd testdata/dashboard && npm ci). Without them
// Run skips the test, or fails it when the environment variable CI is set.
package dashboardtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Chromium is the browser the test drives.
const Chromium = "/usr/bin/chromium"

// DefaultTimeout bounds a whole run when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// Options describes one browser run.
type Options struct {
	// BaseURL is the hub's address, e.g. an httptest server's URL.
	BaseURL string
	// FileName is the path the page must show in a row once Change ran.
	FileName string
	// FileType, when set, is the type the row must show ("file.created").
	FileType string
	// Expect are texts the page must show besides the row (a lock's
	// holder, a webhook's URL).
	Expect []string
	// Change makes the change whose event the page must show; Run calls it
	// once, on the test's goroutine, after the page reports "live".
	Change func(t testing.TB)
	// Stop, when set, stops the hub after the row appeared; the page must
	// then report "hub unreachable". Run calls it on the test's goroutine.
	Stop func(t testing.TB)
	// Screenshot is where the screenshot goes; default
	// <module root>/testdata/artifacts/dashboard.png. With Stop, a second
	// one goes beside it with the suffix -unreachable.
	Screenshot string
	// Timeout bounds the run; default DefaultTimeout.
	Timeout time.Duration
	// Query, when set, is the query string the page is opened with
	// ("token=SECRET" for a hub with tokens).
	Query string
}

// ModuleRoot returns the folder holding go.mod, searching up from the
// working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("dashboardtest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Require checks that Chromium, node and playwright-core are installed and
// returns the module root. When one is missing it fails the test if the
// environment variable CI is set and skips it otherwise, saying how to
// install them.
func Require(t testing.TB) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	if _, err := os.Stat(Chromium); err != nil {
		missing = append(missing, Chromium+" (apt-get install -y chromium)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (apt-get install -y nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join(root, "testdata", "dashboard", "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "playwright-core (cd testdata/dashboard && npm ci)")
	}
	if len(missing) == 0 {
		return root
	}
	msg := "\n" + strings.Repeat("!", 72) +
		"\n!! dashboard browser test NOT RUN: missing " + strings.Join(missing, ", ") +
		"\n!! install everything with .ci/install-browser (as root)\n" + strings.Repeat("!", 72)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Run opens the dashboard at opts.BaseURL in headless Chromium, waits for
// it to report "live", calls opts.Change, and fails the test unless a row
// with opts.FileName appears. It blocks until the browser has exited and
// logs where the screenshot is. See [Require] for what it needs.
func Run(t testing.TB, opts Options) {
	t.Helper()
	root := Require(t)
	if opts.BaseURL == "" || opts.FileName == "" || opts.Change == nil {
		t.Fatal("dashboardtest: BaseURL, FileName and Change are required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	shot := opts.Screenshot
	if shot == "" {
		shot = filepath.Join(root, "testdata", "artifacts", "dashboard.png")
	}
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	expect, err := json.Marshal(opts.Expect)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	dir := filepath.Join(root, "testdata", "dashboard")
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "browser.mjs"), opts.BaseURL, shot)
	cmd.Dir = dir
	step := min(opts.Timeout/2, 30*time.Second)
	cmd.Env = append(os.Environ(),
		"FILE_NAME="+opts.FileName,
		"FILE_TYPE="+opts.FileType,
		"EXPECT_TEXT="+string(expect),
		"CHROMIUM="+Chromium,
		fmt.Sprintf("TIMEOUT_MS=%d", step.Milliseconds()),
		"PAGE_QUERY="+opts.Query,
	)
	if opts.Stop != nil {
		cmd.Env = append(cmd.Env, "CHECK_UNREACHABLE=1")
	}
	killGroup(cmd) // the browser dies with node on timeout
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	waited := false
	defer func() {
		if !waited {
			cancel()
			_ = cmd.Wait()
		}
	}()

	var transcript []string
	ok := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		transcript = append(transcript, line)
		switch strings.TrimSpace(line) {
		case "READY":
			opts.Change(t)
		case "STOP":
			if opts.Stop != nil {
				opts.Stop(t)
			}
		case "OK":
			ok = true
		}
	}
	err = cmd.Wait()
	waited = true
	t.Logf("dashboard screenshot: %s", shot)
	if !ok || err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (after %v)", ctx.Err(), opts.Timeout)
		}
		t.Fatalf("dashboard browser test failed: %v\n--- stdout ---\n%s\n--- stderr ---\n%s",
			err, strings.Join(transcript, "\n"), stderr.String())
	}
}

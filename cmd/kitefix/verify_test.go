package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/connection"
)

func TestVerifyCommand(t *testing.T) {
	const (
		ok   = "bkua_a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"
		few  = "bkua_b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
		gone = "bkua_c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
	)
	bk := bkfake.New(t)
	bk.Add(ok, bkfake.Token{Scopes: connection.RequiredScopes, Orgs: []string{"acme"}})
	bk.Add(few, bkfake.Token{Scopes: []string{"read_builds"}})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(ok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		envToken string
		wantCode int
		wantOut  []string
	}{
		{"connects", nil, ok, 0, []string{"org:      acme (Acme)", "optional: missing write_builds", "result:   ok"}},
		{"token file", []string{"--token-file", tokenFile}, "", 0, []string{"result:   ok"}},
		{"missing scopes", nil, few, 1, []string{"missing:  read_teams read_artifacts", "missing_scopes"}},
		{"revoked", nil, gone, 1, []string{"invalid_token"}},
		{"wrong type", nil, "bkct_abc", 1, []string{"wrong_token_type"}},
		{"no token", nil, "", 2, nil},
		{"unreadable token file", []string{"--token-file", "/nonexistent/token"}, "", 2, nil},
		{"stray argument", []string{"bkua_x"}, "", 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				switch k {
				case "BUILDKITE_API_TOKEN":
					return tt.envToken
				case "BUILDKITE_API_URL":
					return bk.URL
				}
				return ""
			}
			var out, errb bytes.Buffer
			code := runVerify(context.Background(), tt.args, &out, &errb, getenv)
			if code != tt.wantCode {
				t.Errorf("exit = %d, want %d; out %q err %q", code, tt.wantCode, out.String(), errb.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, tok := range []string{ok, few, gone} {
				if strings.Contains(out.String()+errb.String(), tok) {
					t.Error("a token appears in the output")
				}
			}
		})
	}
}

func TestVerifyJSON(t *testing.T) {
	const tok = "bkua_d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"
	bk := bkfake.New(t)
	bk.Add(tok, bkfake.Token{Scopes: []string{"read_builds", "write_builds"}})
	getenv := func(k string) string {
		return map[string]string{"BUILDKITE_API_TOKEN": tok, "BUILDKITE_API_URL": bk.URL}[k]
	}
	var out, errb bytes.Buffer
	if code := runVerify(context.Background(), []string{"--json"}, &out, &errb, getenv); code != 1 {
		t.Fatalf("exit = %d, want 1", code)
	}
	var got struct {
		OK            bool     `json:"ok"`
		MissingScopes []string `json:"missing_scopes"`
		Error         struct{ Code string }
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	want := []string{"read_teams", "read_artifacts", "read_job_env", "read_build_logs", "read_organizations", "read_pipelines", "read_user", "read_suites"}
	if diff := cmp.Diff(want, got.MissingScopes); diff != "" || got.OK || got.Error.Code != "missing_scopes" {
		t.Errorf("ok=%v code=%q missing (-want +got):\n%s", got.OK, got.Error.Code, diff)
	}
}

func TestRunDispatch(t *testing.T) {
	var out, errb bytes.Buffer
	getenv := func(string) string { return "" }
	if code := run(context.Background(), nil, nil, &out, &errb, getenv); code != 2 {
		t.Errorf("no command exit = %d, want 2", code)
	}
	if code := run(context.Background(), []string{"frobnicate"}, nil, &out, &errb, getenv); code != 2 {
		t.Errorf("unknown command exit = %d, want 2", code)
	}
	if code := run(context.Background(), []string{"help"}, nil, &out, &errb, getenv); code != 0 || !strings.Contains(out.String(), "serve") {
		t.Errorf("help exit = %d", code)
	}
}

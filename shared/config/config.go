// Package config reads the environment every kitefix function shares
// (the environment table in ARCHITECTURE.md) and sets up structured logging.
package config

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
)

// Config is the functions' environment.
type Config struct {
	BuildkiteAPIURL string // BUILDKITE_API_URL
	TableName       string // TABLE_NAME
	QueueURL        string // QUEUE_URL
	SecretPrefix    string // SECRET_PREFIX
	WebhookBaseURL  string // WEBHOOK_BASE_URL
	TenantClaim     string // TENANT_CLAIM
	AutoRetry       bool   // AUTO_RETRY
	LogLevel        slog.Level
}

// FromEnv reads the Config from getenv, with the documented defaults.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		BuildkiteAPIURL: or(getenv("BUILDKITE_API_URL"), "https://api.buildkite.com"),
		TableName:       getenv("TABLE_NAME"),
		QueueURL:        getenv("QUEUE_URL"),
		SecretPrefix:    or(getenv("SECRET_PREFIX"), "kitefix/"),
		WebhookBaseURL:  strings.TrimRight(getenv("WEBHOOK_BASE_URL"), "/"),
		TenantClaim:     or(getenv("TENANT_CLAIM"), "tenant_id"),
		AutoRetry:       true,
	}
	if v := getenv("AUTO_RETRY"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("parse AUTO_RETRY %q: want true or false", v)
		}
		c.AutoRetry = b
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return Config{}, fmt.Errorf("parse LOG_LEVEL %q: want debug, info, warn or error", v)
		}
	}
	return c, nil
}

// Require returns an error naming the first of names whose value is empty.
func (c Config) Require(names ...string) error {
	values := map[string]string{
		"TABLE_NAME":       c.TableName,
		"QUEUE_URL":        c.QueueURL,
		"WEBHOOK_BASE_URL": c.WebhookBaseURL,
	}
	for _, n := range names {
		if values[n] == "" {
			return fmt.Errorf("environment variable %s is not set", n)
		}
	}
	return nil
}

// Logger returns a JSON slog logger at the configured level.
func (c Config) Logger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: c.LogLevel}))
}

// MustLoad reads the environment or exits with a clear message; for main.
func MustLoad(required ...string) Config {
	c, err := FromEnv(os.Getenv)
	if err == nil {
		err = c.Require(required...)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kitefix: config:", err)
		os.Exit(2)
	}
	return c
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

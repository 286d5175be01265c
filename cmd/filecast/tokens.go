package main

import (
	"flag"
	"fmt"
	"log/slog"

	"github.com/filecast/filecast/events/api"
)

// tokenConfig is the --token and --token-file flags of a server.
type tokenConfig struct {
	specs listFlag
	file  string
}

func (c *tokenConfig) flags(fs *flag.FlagSet, usage string) {
	fs.Var(&c.specs, "token", usage)
	fs.StringVar(&c.file, "token-file", "", "read --token specs from this file, one a line; # starts a comment")
}

// given reports whether any token flag was used.
func (c *tokenConfig) given() bool { return len(c.specs) > 0 || c.file != "" }

// tokens parses the specs of --token, then those of --token-file.
func (c *tokenConfig) tokens(log *slog.Logger) ([]api.Token, error) {
	var specs []api.TokenSpec
	for _, v := range c.specs {
		specs = append(specs, api.TokenSpec{Where: "--token", Text: v})
	}
	if c.file != "" {
		more, err := api.ReadTokenFile(c.file, log)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		for _, s := range more {
			specs = append(specs, api.TokenSpec{Where: "--token-file " + s.Where, Text: s.Text})
		}
	}
	return api.ParseTokens(specs)
}

package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// withEmbedFlag adds --embed-origin to cmd: the origins whose pages may
// embed the wizard (/embed/v1/frame).
func withEmbedFlag(cmd *cobra.Command) *cobra.Command {
	var def []string
	if v := os.Getenv("PLUGBOARD_EMBED_ORIGINS"); v != "" {
		def = strings.Split(v, ",")
	}
	cmd.Flags().StringSlice("embed-origin", def,
		"origin whose pages may embed the wizard, e.g. https://app.example.com; repeat or comma-separate (default: any page, which sees nothing without a customer token; env PLUGBOARD_EMBED_ORIGINS)")
	return cmd
}

// embedOrigins is the value of cmd's --embed-origin.
func embedOrigins(cmd *cobra.Command) []string {
	v, _ := cmd.Flags().GetStringSlice("embed-origin")
	return v
}

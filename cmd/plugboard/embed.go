package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// registerEmbedFlag adds --embed-origin: the origins whose pages may embed
// the wizard (/embed/v1/frame).
func registerEmbedFlag(cmd *cobra.Command) *[]string {
	var def []string
	if v := os.Getenv("PLUGBOARD_EMBED_ORIGINS"); v != "" {
		def = strings.Split(v, ",")
	}
	return cmd.Flags().StringSlice("embed-origin", def,
		"origin whose pages may embed the wizard, e.g. https://app.example.com; repeat or comma-separate (default: any page, which sees nothing without a customer token; env PLUGBOARD_EMBED_ORIGINS)")
}

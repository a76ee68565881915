package main

import (
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/plugboard/plugboard/internal/onprem"
)

const agentLong = `Run the on-prem agent next to a private service (a PostgreSQL server, an
internal HTTP API) in a customer's network. The agent dials OUT to plugboard's
public port (a websocket on /agent/v1/connect over TLS, so no inbound firewall
rule or VPN is needed), authenticates with its resource's token, and carries the
streams plugboard opens for that resource's connections (multiplexed with yamux).

The agent only ever dials its resource's target (host:port, as the server names
it when the agent connects); it refuses any other destination, whatever the
server asks. --target pins the target locally as well: when the server names
another one, the agent refuses it and exits.

The token comes from --token or, better (it stays out of the process list),
from the PLUGBOARD_AGENT_TOKEN environment variable. It is never logged.

The agent reconnects with exponential backoff and jitter (from 0.5s, capped at
--max-backoff, starting over after a healthy session). It exits non-zero when
the server refuses the token (401: the resource was deleted or its token
rotated; start it with the new token) or names a target other than --target.
A second agent with the same token replaces the first; the replaced one waits
--max-backoff before trying again, so run one agent per resource.`

func newAgentCmd() *cobra.Command {
	var o onprem.AgentOptions
	cmd := &cobra.Command{
		Use:   "agent --server URL [--token TOKEN] [--target host:port] [--ca-file F] [--insecure]",
		Short: "Run the on-prem agent: carry plugboard's connections into a private network",
		Long:  agentLong,
		Example: `  PLUGBOARD_AGENT_TOKEN=pb_agent_... plugboard agent --server https://plugboard.example.com --target 10.0.0.5:5432
  plugboard agent --server https://plugboard.example.com --token pb_agent_... --ca-file /etc/plugboard/ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Token == "" {
				o.Token = os.Getenv("PLUGBOARD_AGENT_TOKEN")
			}
			o.Version = agentVersion()
			o.Logger = logger()
			return onprem.RunAgent(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", os.Getenv("PLUGBOARD_AGENT_SERVER"), "plugboard's public URL, https://... (env PLUGBOARD_AGENT_SERVER)")
	f.StringVar(&o.Token, "token", "", "the resource's agent token (default: env PLUGBOARD_AGENT_TOKEN)")
	f.StringVar(&o.Target, "target", "", "optional local pin host:port: refuse a server that names another target")
	f.StringVar(&o.CAFile, "ca-file", "", "PEM file of a private CA that signed the server's certificate")
	f.BoolVar(&o.Insecure, "insecure", false, "allow an http:// server (development only: the token travels in clear)")
	f.DurationVar(&o.MaxBackoff, "max-backoff", 0, "longest wait between reconnects (default 30s)")
	return cmd
}

// agentVersion is the module version the binary was built from.
func agentVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

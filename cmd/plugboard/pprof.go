package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// registerPprofFlag adds --pprof-addr to cmd and returns where its value
// goes.
func registerPprofFlag(cmd *cobra.Command) *string {
	addr := new(string)
	cmd.Flags().StringVar(addr, "pprof-addr", os.Getenv("PLUGBOARD_PPROF_ADDR"),
		"serve Go's pprof profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off when empty. "+
			"Profiles show code paths, not values, but keep the address private (env PLUGBOARD_PPROF_ADDR)")
	return addr
}

// pprofMux is the handler of the pprof address: net/http/pprof's
// profiles, and nothing else.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// startPprof serves the profiles on addr until the process ends; an empty
// addr serves nothing. It returns the address it listens on.
func startPprof(addr string, log *slog.Logger) (net.Addr, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server stopped", "err", err)
		}
	}()
	log.Info("pprof profiles served", "addr", ln.Addr().String())
	return ln.Addr(), nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
	"github.com/plugboard/plugboard/internal/store"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Rotate the data key and replace the master key",
		Long: `Manage the keys that seal stored secrets.

A master key (PLUGBOARD_MASTER_KEY, or the file <data-dir>/master.key) wraps
data keys stored in the database; the active data key seals every secret
value. Keys are plugboard-wide: they seal the values of every organization.`,
	}
	cmd.AddCommand(newKeysRotateCmd(), newKeysNewMasterKeyCmd(), newKeysRewrapCmd())
	return cmd
}

// loadExistingMasterKey loads the master key the way serve does
// (PLUGBOARD_MASTER_KEY, else <data-dir>/master.key) but never creates one.
func loadExistingMasterKey(dataDir string) (secrets.MasterKey, error) {
	if s := os.Getenv("PLUGBOARD_MASTER_KEY"); s != "" {
		return secrets.ParseMasterKey(s)
	}
	return loadMasterKeyFile(filepath.Join(dataDir, "master.key"))
}

// loadMasterKeyFile reads an existing key file; a missing file is an error.
func loadMasterKeyFile(path string) (secrets.MasterKey, error) {
	if _, err := os.Stat(path); err != nil {
		return secrets.MasterKey{}, fmt.Errorf("master key file: %w", err)
	}
	k, created, err := secrets.LoadOrCreateMasterKey(path)
	if err == nil && created {
		err = fmt.Errorf("master key file %s vanished while being read", path)
	}
	return k, err
}

func openKeyring(ctx context.Context, sf *storeFlags) (*store.Store, *secrets.Keyring, error) {
	master, err := loadExistingMasterKey(sf.dataDir)
	if err != nil {
		return nil, nil, err
	}
	s, err := sf.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	kr := secrets.NewKeyring(master, &store.KeyStore{DB: s.Client})
	return s, kr, nil
}

func newKeysRotateCmd() *cobra.Command {
	var sf storeFlags
	var batch int
	var resume bool
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new data key and re-encrypt every stored secret under it, online",
		Long: `Make a new active data key and re-encrypt every sealed value under it.

Run it while plugboard serves: values are re-encrypted in batches, and each is
written back only if nobody changed it meanwhile, so no save or token refresh
is lost. If the command is stopped midway nothing is lost either (every value
stays readable); run "plugboard keys rotate --resume" to finish moving the
values to the active key without making another one.

Running servers learn of the new key within a minute; values they seal until
then use the previous key (still valid) and are reported as remaining: run
again with --resume a minute later to move them too.

The master key is read like serve reads it (PLUGBOARD_MASTER_KEY, else
<data-dir>/master.key); it is never created here.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, kr, err := openKeyring(ctx, &sf)
			if err != nil {
				return err
			}
			defer s.Close()
			out := cmd.OutOrStdout()
			rot := &sealed.Rotator{DB: s.Client, Keys: kr, Batch: batch, Log: logger(),
				OnBatch: func(p sealed.Progress) {
					fmt.Fprintf(out, "  %s: through id %d, %d value(s) re-encrypted so far\n", p.Column, p.LastID, p.Reencrypted)
				}}
			var res sealed.Result
			if resume {
				res, err = rot.Reencrypt(ctx)
			} else {
				res, err = rot.Rotate(ctx)
			}
			if res.KeyID != "" {
				fmt.Fprintf(out, "active data key: %s\n", res.KeyID)
			}
			if err != nil {
				fmt.Fprintf(out, "stopped after re-encrypting %d value(s); nothing is lost: run \"plugboard keys rotate --resume\" to finish\n", res.Reencrypted)
				return err
			}
			printResult(out, res)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().IntVar(&batch, "batch", sealed.DefaultBatch, "rows read per batch")
	cmd.Flags().BoolVar(&resume, "resume", false, "make no new key: finish re-encrypting values under older keys")
	return cmd
}

func printResult(out io.Writer, res sealed.Result) {
	fmt.Fprintf(out, "re-encrypted %d value(s); %d remaining under older keys", res.Reencrypted, res.Remaining)
	if res.Failed > 0 {
		fmt.Fprintf(out, " (%d do not decrypt: see the log)", res.Failed)
	}
	fmt.Fprintln(out)
}

func newKeysNewMasterKeyCmd() *cobra.Command {
	var outPath string
	cmd := &cobra.Command{
		Use:   "new-master-key",
		Short: "Generate a new master key into a new file (for keys rewrap)",
		Long: `Generate a new random master key and write it to --out, readable by its
owner only. An existing file is never replaced. Nothing in the database
changes: use the file with "plugboard keys rewrap".`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if outPath == "" {
				return errors.New("--out is required")
			}
			k, err := secrets.GenerateMasterKey()
			if err != nil {
				return err
			}
			if err := secrets.WriteMasterKeyFile(outPath, k); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote master key %s to %s; back it up\n", k.ID(), outPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&outPath, "out", "", "file to create (must not exist)")
	return cmd
}

func newKeysRewrapCmd() *cobra.Command {
	var sf storeFlags
	var newPath string
	cmd := &cobra.Command{
		Use:   "rewrap",
		Short: "Re-wrap every data key under a new master key",
		Long: `Re-wrap every data key under the master key in --new-master-key-file
(made with "plugboard keys new-master-key --out PATH"), in one transaction.
Stored secrets are not touched: the data keys stay the same.

The current master key is read like serve reads it (PLUGBOARD_MASTER_KEY, else
<data-dir>/master.key). After the rewrap only the new master key opens the
data keys, so:

  1. stop plugboard (a server still on the old key fails on data keys it has
     not yet loaded), and back up the new key file;
  2. run this command;
  3. switch the configuration to the new key (replace <data-dir>/master.key
     with the new file, or set PLUGBOARD_MASTER_KEY) and start plugboard.

An interrupted rewrap can be run again: keys already under the new master key
are left as they are.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if newPath == "" {
				return errors.New("--new-master-key-file is required (make one with: plugboard keys new-master-key --out PATH)")
			}
			ctx := cmd.Context()
			oldMaster, err := loadExistingMasterKey(sf.dataDir)
			if err != nil {
				return err
			}
			newMaster, err := loadMasterKeyFile(newPath)
			if err != nil {
				return err
			}
			s, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := sealed.Rewrap(ctx, s.Client, oldMaster, newMaster)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d data key(s) now wrapped by master key %s (%d changed)\n", res.Keys, newMaster.ID(), res.Rewrapped)
			fmt.Fprintf(cmd.OutOrStdout(), "now start plugboard with the new master key (%s); the old key (%s) no longer opens the data keys\n", newPath, oldMaster.ID())
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&newPath, "new-master-key-file", "", "file holding the new master key (required; see keys new-master-key)")
	return cmd
}

// Package onpremtest gives plugboard's tests a private network: a
// PostgreSQL inside a network namespace that only an agent started in that
// namespace can reach, a TLS certificate for the host side's address, and
// the plugboard binary to run as the agent.
package onpremtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash/fnv"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const pgBin = "/usr/lib/postgresql/15/bin"

// Private is a network namespace joined to the host by a veth pair, with a
// PostgreSQL listening only on the namespace's 127.0.0.1:5432.
type Private struct {
	Namespace string
	HostAddr  netip.Addr // the host side of the veth pair: where the agent reaches the server
	NSAddr    netip.Addr // the namespace side
	User      string
	Password  string
	Database  string
	// Target is the PostgreSQL as seen from inside the namespace.
	Target string
}

// skip skips the test with reason, or fails it when CI=true.
func skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("on CI this test must run: %s", reason)
	}
	t.Skip(reason)
}

// PrivatePostgres makes the namespace and starts the PostgreSQL in it; all
// is removed when the test ends. It skips when not root or without the
// PostgreSQL 15 binaries (and fails when CI=true).
func PrivatePostgres(t testing.TB) *Private {
	t.Helper()
	needNetns(t)
	if _, err := os.Stat(filepath.Join(pgBin, "postgres")); err != nil {
		skip(t, "needs the PostgreSQL 15 binaries in "+pgBin)
	}
	if _, err := user.Lookup("postgres"); err != nil {
		skip(t, "needs the postgres user")
	}
	p := &Private{User: "postgres", Database: "postgres", Password: randomHex(12)}
	p.makeNamespace(t)
	p.startPostgres(t)
	p.Target = "127.0.0.1:5432"
	return p
}

// needNetns skips the test unless it can make network namespaces: root
// and iproute2 (and fails it when CI=true).
func needNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skip(t, "needs root for ip netns")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip(t, "needs iproute2 (ip)")
	}
}

// makeNamespace creates the namespace and the veth pair on a free 10.x.y.0/30.
func (p *Private) makeNamespace(t testing.TB) {
	t.Helper()
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", t.Name(), os.Getpid())
	seed := h.Sum32()
	for try := uint32(0); try < 64; try++ {
		n := (seed + try*7919) % (128 * 64)
		x, y := 64+n/64, (n%64)*4
		name := fmt.Sprintf("pbt%d-%d", x, y)
		if err := exec.Command("ip", "netns", "add", name).Run(); err != nil {
			continue // taken by another test
		}
		p.Namespace = name
		p.HostAddr = netip.AddrFrom4([4]byte{10, byte(x), byte(y), 1})
		p.NSAddr = netip.AddrFrom4([4]byte{10, byte(x), byte(y), 2})
		t.Cleanup(p.removeNamespace)
		hostIf, nsIf := "vh"+name[3:], "vn"+name[3:]
		for _, args := range [][]string{
			{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf},
			{"link", "set", nsIf, "netns", name},
			{"addr", "add", p.HostAddr.String() + "/30", "dev", hostIf},
			{"link", "set", hostIf, "up"},
			{"netns", "exec", name, "ip", "addr", "add", p.NSAddr.String() + "/30", "dev", nsIf},
			{"netns", "exec", name, "ip", "link", "set", nsIf, "up"},
			{"netns", "exec", name, "ip", "link", "set", "lo", "up"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		return
	}
	t.Fatal("no free network namespace name")
}

// removeNamespace kills what still runs inside and deletes the namespace
// (which deletes the veth pair).
func (p *Private) removeNamespace() {
	out, _ := exec.Command("ip", "netns", "pids", p.Namespace).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			if proc, err := os.FindProcess(pid); err == nil {
				_ = proc.Kill()
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	_ = exec.Command("ip", "netns", "del", p.Namespace).Run()
}

// startPostgres runs initdb and postgres as the postgres user inside the
// namespace, password auth, listening only on 127.0.0.1:5432 there.
func (p *Private) startPostgres(t testing.TB) {
	t.Helper()
	dir, err := os.MkdirTemp("", "plugboard-onprem-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	pw := filepath.Join(dir, "pw")
	data := filepath.Join(dir, "data")
	u, _ := user.Lookup("postgres")
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.WriteFile(pw, []byte(p.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{dir, pw} {
		if err := os.Chown(f, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p.run(t, "runuser", "-u", "postgres", "--", pgBin+"/initdb", "-D", data, "-U", "postgres",
		"--auth=scram-sha-256", "--pwfile="+pw, "-E", "UTF8")
	p.run(t, "runuser", "-u", "postgres", "--", pgBin+"/pg_ctl", "-D", data, "-w", "-t", "60",
		"-l", filepath.Join(dir, "log"), "-o", "-c listen_addresses=127.0.0.1 -p 5432 -k "+dir, "start")
	t.Cleanup(func() {
		_ = p.Command("runuser", "-u", "postgres", "--", pgBin+"/pg_ctl", "-D", data, "-m", "immediate", "stop").Run()
	})
}

func (p *Private) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := p.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// Command is a process that runs inside the namespace (ip netns exec).
func (p *Private) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", p.Namespace, name}, args...)...)
}

// ListenHost listens on the host side's address (port 0), where a process
// in the namespace reaches the host.
func (p *Private) ListenHost(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(p.HostAddr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// DirectDial tries the PostgreSQL from the host at the namespace's address;
// a test asserts that it fails. (The host's own 127.0.0.1:5432 is another
// server, if any: a test checks that the private credentials fail there.)
func (p *Private) DirectDial(ctx context.Context) error {
	d := net.Dialer{Timeout: time.Second}
	addr := netip.AddrPortFrom(p.NSAddr, 5432).String()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		c.Close()
		return fmt.Errorf("the host reached %s", addr)
	}
	return nil
}

// TLS is a self-signed certificate for the given addresses (and
// 127.0.0.1), for a server the agent verifies with --ca-file CAFile.
func TLS(t testing.TB, addrs ...netip.Addr) (cfg *tls.Config, caFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "plugboard test"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	for _, a := range addrs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, caFile
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// AgentBinary builds the plugboard binary once per test process and
// returns its path (run it as `plugboard agent`).
func AgentBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "plugboard-agent-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "plugboard")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/plugboard/plugboard/cmd/plugboard").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Command demo is the client half of `make demo`: against a running Prosody
// with mod_saslcert and the saslcert component, it makes a key and a
// self-signed certificate for an account, uploads it with a plain XEP-0257
// <append/> (no 'to', as unmodified clients send it), lists it, logs in with
// SASL EXTERNAL only, revokes the certificate and shows that the live session
// is closed and the next login refused. It prints each step.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5222", "Prosody's c2s address")
	account := flag.String("jid", "alice@example.org", "the account")
	password := flag.String("password", "", "the account's password (used once, to upload the certificate)")
	caFile := flag.String("ca", "", "PEM file with the server's TLS certificate (trusted for this demo)")
	out := flag.String("out", "", "directory to write the client key and certificate to (kept for DEMO_KEEP)")
	keep := flag.Bool("keep", false, "stop after the EXTERNAL login (do not revoke), for DEMO_KEEP")
	flag.Parse()
	if err := run(*addr, *account, *password, *caFile, *out, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "demo: FAILED: %v\n", err)
		os.Exit(1)
	}
}

var stepNo int

func step(format string, a ...any) {
	stepNo++
	fmt.Printf("\n== step %d: %s\n", stepNo, fmt.Sprintf(format, a...))
}

func say(format string, a ...any) { fmt.Printf("   %s\n", fmt.Sprintf(format, a...)) }

func run(addr, account, password, caFile, out string, keep bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	me, err := jid.Parse(account)
	if err != nil {
		return fmt.Errorf("-jid %q: %w", account, err)
	}
	me = me.Bare()
	roots := x509.NewCertPool()
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		if !roots.AppendCertsFromPEM(b) {
			return fmt.Errorf("%s: no PEM certificate", caFile)
		}
	}

	step("make a key and a self-signed client certificate for %s", me)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	der, err := enroll.SelfSigned(key, me, now.Add(-time.Minute), now.Add(365*24*time.Hour))
	if err != nil {
		return err
	}
	fp := storage.FingerprintOf(der)
	say("ECDSA P-256 key, certificate with subjectAltName otherName id-on-xmppAddr;UTF8:%s", me)
	say("fingerprint %s", fp)
	if out != "" {
		if err := writeKeyPair(out, der, key); err != nil {
			return err
		}
		say("written to %s/client.crt and client.key", out)
	}
	clientCert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}

	step("log in with the password once (SASL PLAIN over STARTTLS) to upload it")
	pw, err := xmppclient.Dial(ctx, xmppclient.Config{Addr: addr, JID: me, RootCAs: roots, Password: password})
	if err != nil {
		return err
	}
	defer pw.Close()
	say("bound as %s", pw.LocalAddr())

	step("upload it: <iq type='set'><append xmlns='%s'> with no 'to' (mod_saslcert forwards it to the component)", xep0257.NS)
	if err := xep0257.AppendCert(ctx, pw.Session, jid.JID{}, "demo laptop", der, false); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	say("result: stored as %q", "demo laptop")
	step("the same upload again is refused")
	err = xep0257.AppendCert(ctx, pw.Session, jid.JID{}, "demo laptop", der, false)
	say("error: %v", err)
	if err == nil {
		return errors.New("a duplicate upload was accepted")
	}

	step("list: <iq type='get'><items xmlns='%s'/>", xep0257.NS)
	if err := list(ctx, pw); err != nil {
		return err
	}

	step("log in with SASL EXTERNAL only: the certificate in TLS, no password")
	ext, err := xmppclient.Dial(ctx, xmppclient.Config{Addr: addr, JID: me, RootCAs: roots, Cert: clientCert})
	if err != nil {
		return fmt.Errorf("EXTERNAL login: %w", err)
	}
	say("SASL EXTERNAL succeeded; bound JID: %s", ext.LocalAddr())

	step("list again: the EXTERNAL session shows up under <users>")
	// The plugin batches session notices (every 50 ms): wait for this one.
	for deadline := time.Now().Add(5 * time.Second); ; {
		items, err := xep0257.Fetch(ctx, pw.Session, jid.JID{})
		if err != nil {
			return fmt.Errorf("items: %w", err)
		}
		if len(items) > 0 && len(items[0].Users) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := list(ctx, pw); err != nil {
		return err
	}
	if keep {
		ext.Close()
		fmt.Println("\n(DEMO_KEEP: not revoking)")
		return nil
	}

	step("revoke it: <revoke><name>demo laptop</name></revoke>")
	if err := xep0257.RevokeCert(ctx, pw.Session, jid.JID{}, "demo laptop"); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	say("result: revoked")
	select {
	case err := <-ext.Done():
		say("the EXTERNAL session was closed by the server: %v", err)
	case <-time.After(5 * time.Second):
		ext.Close()
		return errors.New("the EXTERNAL session is still open 5 s after the revoke")
	}

	step("log in with the revoked certificate again")
	again, err := xmppclient.Dial(ctx, xmppclient.Config{Addr: addr, JID: me, RootCAs: roots, Cert: clientCert})
	if err == nil {
		again.Close()
		return errors.New("a revoked certificate logged in")
	}
	var ae *xmppclient.AuthError
	if !errors.As(err, &ae) {
		return fmt.Errorf("expected a SASL failure, got: %w", err)
	}
	say("refused: <failure><%s/></failure> %s", ae.Condition, ae.Text)

	step("list: nothing active is left")
	if err := list(ctx, pw); err != nil {
		return err
	}
	fmt.Println("\ndemo: OK")
	return nil
}

func list(ctx context.Context, c *xmppclient.Client) error {
	items, err := xep0257.Fetch(ctx, c.Session, jid.JID{})
	if err != nil {
		return fmt.Errorf("items: %w", err)
	}
	if len(items) == 0 {
		say("(no certificates)")
	}
	for _, it := range items {
		users := "no sessions"
		if len(it.Users) > 0 {
			users = "sessions: " + strings.Join(it.Users, ", ")
		}
		say("%q  %s  (%s)", it.Name, storage.FingerprintOf(it.Cert), users)
	}
	return nil
}

func writeKeyPair(dir string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "client.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "client.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

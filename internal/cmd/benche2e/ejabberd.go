package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/ejabberdtest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// The ejabberd pair (-ejabberd): ejabberd 23.01 with mod_saslcert and
// saslcert serve ("ej-ours") against ejabberd's own CA-only SASL EXTERNAL
// without the module ("ej-ca", which checks the chain to c2s_cafile and
// nothing else). Both get the same -users accounts, each with an ECDSA
// P-256 certificate of one benchmark CA that carries the account's
// xmppAddr; ej-ours's store holds those certificates (imported before the
// component starts). The login phase runs round by round, A B A B, and the
// section ends with
//
//	RATIO_EJABBERD login=<ej-ours/ej-ca>
type ejInstance struct {
	name string
	srv  *ejabberdtest.Server
	comp *proc
	res  result
	sasl []time.Duration // each login's <auth/> to <success/>
}

// runEjabberd runs the ejabberd pair after the Prosody phases and prints
// its section.
func (b *bench) runEjabberd(ctx context.Context, w io.Writer) error {
	if !ejabberdtest.Installed() {
		return fmt.Errorf("-ejabberd: ejabberd 23.01 or erlang-dev is not installed (scripts/deps.sh installs them)")
	}
	dir := filepath.Join(b.work, "ejabberd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caFile, users, err := b.ejabberdAccounts(dir)
	if err != nil {
		return err
	}
	mods := filepath.Join(dir, "modules")
	if err := ejabberdtest.Build(mods); err != nil {
		return err
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	password := hex.EncodeToString(secret[:12]) // the accounts' (never used: the logins are EXTERNAL)
	ours := &ejInstance{name: "ej-ours"}
	peer := &ejInstance{name: "ej-ca"}
	for _, in := range []*ejInstance{peer, ours} {
		d := filepath.Join(dir, in.name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		o := ejabberdtest.Options{Domain: b.domain, ComponentJID: b.component, CAFile: caFile} // loglevel info: Debian's default
		if in == peer {
			o.NoModule = true
		} else {
			o.ComponentSecret, o.ModulesDir = hex.EncodeToString(secret), mods
			// Every benchmark login comes from 127.0.0.1: lift the
			// per-address lookup limit, as for Prosody.
			o.LookupBurst, o.LookupRate = 100000, 100000
		}
		srv, err := ejabberdtest.Launch(d, o)
		if srv != nil {
			defer srv.Close()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", in.name, err)
		}
		in.srv = srv
		// mod_saslcert answers the component's account reconciliation
		// from ejabberd's accounts: the certificates' owners must exist.
		names := make([]string, len(users))
		for i, u := range users {
			names[i] = u.user
		}
		if err := srv.RegisterMany(names, password); err != nil {
			return fmt.Errorf("%s: %w", in.name, err)
		}
		say("%s: ejabberd 23.01 (%s) on %s", in.name, map[bool]string{true: "CA-only EXTERNAL, no module", false: "mod_saslcert"}[in == peer], srv.C2SAddr)
	}
	if err := b.ejabberdComponent(ctx, ours, users); err != nil {
		return err
	}
	defer ours.comp.stop()

	pair := []*ejInstance{peer, ours}
	// The same certificates, each instance's accounts pinning its server
	// certificate.
	accounts := map[*ejInstance][]*account{}
	for _, in := range pair {
		for _, u := range users {
			accounts[in] = append(accounts[in], &account{user: u.user, der: u.der, cert: u.cert, tls: pinTLS(b.domain, in.srv.Cert.Raw, u.cert)})
		}
	}
	next := 0
	batch := func(in *ejInstance, n int) ([]time.Duration, error) {
		lat := make([]time.Duration, 0, n)
		for range n {
			u := accounts[in][next%len(users)]
			next++
			t0 := time.Now()
			c, _, err := login(ctx, in.srv.C2SAddr, b.domain, u)
			d := time.Since(t0)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", in.name, err)
			}
			in.sasl = append(in.sasl, c.sasl)
			c.close()
			lat = append(lat, d)
		}
		return lat, nil
	}
	for _, in := range pair {
		if _, err := batch(in, b.cfg.warmup); err != nil {
			return err
		}
	}
	for r := range b.cfg.rounds {
		for _, in := range pair {
			t0 := time.Now()
			lat, err := batch(in, b.cfg.logins)
			if err != nil {
				return err
			}
			wall := time.Since(t0)
			in.res.n += len(lat)
			in.res.wall += wall
			in.res.lat = append(in.res.lat, lat...)
			in.res.perRound = append(in.res.perRound, float64(len(lat))/wall.Seconds())
		}
		say("ejabberd round %d/%d: %s %.0f/s, %s %.0f/s", r+1, b.cfg.rounds, peer.name, peer.res.perRound[r], ours.name, ours.res.perRound[r])
	}

	fmt.Fprintf(w, "\nejabberd 23.01 pair: SASL EXTERNAL logins (connect to bound), %d rounds x %d logins, %d accounts with CA-issued certificates\n",
		b.cfg.rounds, b.cfg.logins, len(users))
	for _, in := range pair {
		slices.Sort(in.res.lat)
		fmt.Fprintf(w, "  %-8s %7.1f logins/s  p50 %s ms  p90 %s ms  p99 %s ms  max %s ms\n", in.name, in.res.rate(),
			ms(quantile(in.res.lat, 0.5)), ms(quantile(in.res.lat, 0.9)), ms(quantile(in.res.lat, 0.99)), ms(in.res.lat[len(in.res.lat)-1]))
	}
	fmt.Fprintf(w, "  <auth/> to <success/> p50: %s %s ms, %s %s ms\n", peer.name, ms(quantile(sortedCopy(peer.sasl), 0.5)),
		ours.name, ms(quantile(sortedCopy(ours.sasl), 0.5)))
	if rt, err := lookupRoundTrips(ours.srv, b.domain, b.component, users[0].der); err != nil {
		fmt.Fprintf(w, "  round trips: not measured: %v\n", err)
	} else {
		fmt.Fprintf(w, "  round trips from ejabberd through the component, nothing else running (%d each): %s\n", roundTripN, rt)
	}
	lr := ratio(ours.res.rate(), peer.res.rate())
	fmt.Fprintf(w, "  per round ej-ours/ej-ca: %s\n", roundRatios(&ours.res, &peer.res))
	fmt.Fprintf(w, "target: login >= 0.9 %s (mod_saslcert adds one lookup to a login that otherwise checks only the chain)\n", verdict(lr >= 0.9))
	fmt.Fprintf(w, "RATIO_EJABBERD login=%.2f\n", lr)
	return nil
}

// ejabberdAccounts makes the benchmark CA (written to dir/ca.pem, ejabberd's
// c2s_cafile) and, for every login account, a certificate of that CA for
// the same key with the account's xmppAddr.
func (b *bench) ejabberdAccounts(dir string) (string, []*account, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "benche2e CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", nil, err
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		return "", nil, err
	}
	users := make([]*account, len(b.users))
	for i, u := range b.users {
		key := u.cert.PrivateKey.(*ecdsa.PrivateKey)
		san := certtest.SAN([]certtest.OtherName{certtest.XMPPAddr(u.user + "@" + b.domain)}, nil)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i) + 2), Subject: pkix.Name{CommonName: u.user},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return "", nil, err
		}
		cert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
		users[i] = &account{user: u.user, der: der, cert: cert, tls: b.clientTLS(cert)}
	}
	return caFile, users, nil
}

// ejabberdComponent imports the accounts' certificates into a fresh store
// and runs saslcert serve against ej-ours's ejabberd.
func (b *bench) ejabberdComponent(ctx context.Context, in *ejInstance, users []*account) error {
	d := filepath.Join(in.srv.Dir, "component")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, filepath.Join(d, dbFile), sqlite.Options{})
	if err != nil {
		return err
	}
	recs := make([]*storage.Cert, len(users))
	for i, u := range users {
		c, err := x509.ParseCertificate(u.der)
		if err != nil {
			db.Close()
			return err
		}
		recs[i] = &storage.Cert{DER: u.der, Fingerprint: storage.FingerprintOf(u.der), NotBefore: c.NotBefore, NotAfter: c.NotAfter,
			Issuer: c.Issuer.String(), Source: storage.SourceUpload, Account: u.user + "@" + b.domain, Name: "bench"}
	}
	slices.SortFunc(recs, func(x, y *storage.Cert) int { return slices.Compare(x.Fingerprint[:], y.Fingerprint[:]) })
	err = db.ImportCerts(ctx, recs, "benche2e")
	db.Close()
	if err != nil {
		return fmt.Errorf("importing the ejabberd accounts' certificates: %w", err)
	}
	secretFile := filepath.Join(in.srv.Dir, "component.secret")
	out := filepath.Join(in.srv.Dir, "component.log")
	args := []string{"--log-level", "info", "serve", "--server-addr", in.srv.ComponentAddr, "--component", b.component,
		"--domain", b.domain, "--data-dir", d}
	if b.cfg.cacheTTL != "" {
		args = append(args, "--plugin-cache-ttl", b.cfg.cacheTTL)
	}
	p, err := startProc("component-"+in.name, in.srv.Dir, out, []string{"SASLCERT_SECRET_FILE=" + secretFile}, false, b.cfg.saslcert, args...)
	if err != nil {
		return err
	}
	in.comp = p
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if p.exited() {
			return fmt.Errorf("the component of %s exited:\n%s", in.name, tailFile(out, 4<<10))
		}
		// Connected, and the <account-created/> notices of the setup's
		// registrations (mod_saslcert sends them one at a time after the
		// component's <sessions/> query) all processed: they are set-up,
		// not part of the measurement.
		if l, _ := os.ReadFile(out); strings.Contains(string(l), "connected to the server") &&
			strings.Count(string(l), `msg="account registered"`) >= len(users) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the component of %s did not connect and take the account notices in 5 min:\n%s", in.name, tailFile(out, 4<<10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

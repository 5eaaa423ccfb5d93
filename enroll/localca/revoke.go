package localca

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/saslcert/saslcert/enroll"
)

// Revocation is one revoked certificate.
type Revocation struct {
	Serial    *big.Int
	RevokedAt time.Time
	Reason    enroll.RevocationReason
	// NotAfter is when the certificate expires; the CRL lists it until then.
	// For a revocation by serial number alone it is RevokedAt plus
	// enroll.MaxLifetime (no certificate of this CA lives longer).
	NotAfter time.Time
	Subject  string // the certificate's subject, "" if revoked by serial number
}

// state is the content of RevokedFile.
type state struct {
	// Revision counts changes to Revoked.
	Revision int64 `json:"revision"`
	// CRLNumber is the number of the last CRL made (in CRLFile), made from
	// revision CRLRevision at CRLThisUpdate.
	CRLNumber     int64     `json:"crlNumber"`
	CRLRevision   int64     `json:"crlRevision"`
	CRLThisUpdate time.Time `json:"crlThisUpdate"`
	Revoked       []entry   `json:"revoked"`
}

type entry struct {
	Serial    string                  `json:"serial"` // hexadecimal
	RevokedAt time.Time               `json:"revokedAt"`
	Reason    enroll.RevocationReason `json:"reason"`
	NotAfter  time.Time               `json:"notAfter"`
	Subject   string                  `json:"subject,omitempty"`
}

func (e entry) revocation() (Revocation, error) {
	sn, ok := new(big.Int).SetString(e.Serial, 16)
	if !ok {
		return Revocation{}, fmt.Errorf("localca: %s: bad serial %q", RevokedFile, e.Serial)
	}
	return Revocation{Serial: sn, RevokedAt: e.RevokedAt, Reason: e.Reason, NotAfter: e.NotAfter, Subject: e.Subject}, nil
}

// readState reads RevokedFile; a missing file is an empty state. The caller
// holds the lock.
func (ca *CA) readState() (*state, error) {
	data, err := os.ReadFile(filepath.Join(ca.dir, RevokedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return new(state), nil
	}
	if err != nil {
		return nil, fmt.Errorf("localca: %w", err)
	}
	st := new(state)
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("localca: %s: %w", RevokedFile, err)
	}
	return st, nil
}

// writeState replaces RevokedFile durably. The caller holds the lock.
func (ca *CA) writeState(st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	if err := writeAtomic(filepath.Join(ca.dir, RevokedFile), append(data, '\n'), dataMode); err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	return nil
}

// withLock runs f holding the CA directory's lock.
func (ca *CA) withLock(f func() error) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	l, err := lock(filepath.Join(ca.dir, LockFile))
	if err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	defer l.unlock()
	return f()
}

// Revoke records the revocation of a certificate this CA issued; the next
// CRL lists it. It appends one line to JournalFile (and syncs it), so its
// cost does not grow with the number of revocations; the list in
// RevokedFile is rewritten when the next CRL is made or every
// compactEvery revocations. With req.Cert it first checks that this CA issued it
// (enroll.ErrBadRequest if not); with only req.Serial it trusts the caller.
// Revoking a serial number twice keeps the first revocation and is not an
// error. When Revoke returns nil the revocation is on disk (it survives a
// crash).
func (ca *CA) Revoke(ctx context.Context, req *enroll.RevokeRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if req == nil {
		return enroll.Errorf(enroll.ErrBadRequest, "no revoke request")
	}
	sn, err := req.SerialNumber()
	if err != nil {
		return err
	}
	now := ca.o.Now().Truncate(time.Second)
	e := entry{Serial: sn.Text(16), RevokedAt: now, Reason: req.Reason, NotAfter: now.Add(enroll.MaxLifetime)}
	if c := req.Cert; c != nil {
		if !bytes.Equal(c.RawIssuer, ca.cert.RawSubject) || c.CheckSignatureFrom(ca.cert) != nil {
			return enroll.Errorf(enroll.ErrBadRequest, "the certificate (serial %x, issuer %s) was not issued by this CA", sn, c.Issuer)
		}
		e.NotAfter, e.Subject = c.NotAfter, c.Subject.String()
	}
	return ca.withLock(func() error {
		if _, err := ca.load(); err != nil {
			return err
		}
		if ca.cache.serials[e.Serial] {
			return nil
		}
		// One appended line, whatever the length of the list; the list is
		// rewritten (expired entries dropped) only now and then.
		if err := ca.appendJournal(e); err != nil {
			return err
		}
		if ca.cache.lines >= compactEvery {
			return ca.compact(now)
		}
		return nil
	})
}

// Revocations returns what has been revoked and has not expired yet, oldest
// first.
func (ca *CA) Revocations(ctx context.Context) ([]Revocation, error) {
	var out []Revocation
	err := ca.withLock(func() error {
		st, err := ca.load()
		if err != nil {
			return err
		}
		now := ca.o.Now()
		for _, e := range st.Revoked {
			if e.NotAfter.Before(now) {
				continue
			}
			r, err := e.revocation()
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// CRL returns the current CRL (DER), signed by the issuing CA: every
// revoked certificate that has not expired, a CRL number that grows with
// each new CRL, thisUpdate = when it was made and nextUpdate = thisUpdate +
// CRLValidity. A CRL is reused until half of its validity has passed or
// something was revoked since; it is kept in CRLFile.
func (ca *CA) CRL(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var der []byte
	err := ca.withLock(func() error {
		st, err := ca.load()
		if err != nil {
			return err
		}
		now := ca.o.Now()
		path := filepath.Join(ca.dir, CRLFile)
		fresh := st.CRLNumber > 0 && st.CRLRevision == st.Revision &&
			!now.Before(st.CRLThisUpdate) && now.Before(st.CRLThisUpdate.Add(ca.o.CRLValidity/2))
		if fresh {
			if der, err = os.ReadFile(path); err == nil {
				return nil
			}
		}
		thisUpdate := now.Truncate(time.Second)
		list := &x509.RevocationList{
			Number:     big.NewInt(st.CRLNumber + 1),
			ThisUpdate: thisUpdate,
			NextUpdate: thisUpdate.Add(ca.o.CRLValidity),
		}
		for _, e := range st.Revoked {
			if e.NotAfter.Before(now) {
				continue
			}
			r, err := e.revocation()
			if err != nil {
				return err
			}
			list.RevokedCertificateEntries = append(list.RevokedCertificateEntries, x509.RevocationListEntry{
				SerialNumber:   r.Serial,
				RevocationTime: r.RevokedAt,
				ReasonCode:     int(r.Reason),
			})
		}
		der, err = x509.CreateRevocationList(rand.Reader, list, ca.cert, ca.key)
		if err != nil {
			return fmt.Errorf("localca: make CRL: %w", err)
		}
		if err := writeAtomic(path, der, certMode); err != nil {
			return fmt.Errorf("localca: %w", err)
		}
		st.CRLNumber++
		st.CRLRevision = st.Revision
		st.CRLThisUpdate = thisUpdate
		return ca.compact(now)
	})
	if err != nil {
		return nil, err
	}
	return der, nil
}

// CRLContentType is the media type of a DER CRL (RFC 5280 §4.2.1.13).
const CRLContentType = "application/pkix-crl"

// CRLHandler serves the current CRL (DER, application/pkix-crl) to GET and
// HEAD requests on any path; mount it at the path of Options.CRLURL on a
// listener the XMPP servers can reach (see ListenLoopback).
func (ca *CA) CRLHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		der, err := ca.CRL(r.Context())
		if err != nil {
			http.Error(w, "CRL unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", CRLContentType)
		w.Header().Set("Cache-Control", "max-age=60")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(der))
	})
}

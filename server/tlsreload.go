package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLSRecheck is how often the HTTP listener's certificate files are checked
// for a change (a renewal): at the first handshake after this much time,
// their modification times are compared and, if either changed, the pair is
// read again. A pair that does not load is logged and the previous one kept.
const TLSRecheck = time.Minute

// certFiles serves the listener's certificate and picks up renewed files
// without a restart.
type certFiles struct {
	certFile, keyFile string
	now               func() time.Time
	log               *slog.Logger

	mu      sync.Mutex
	pair    *tls.Certificate
	stamp   [2]time.Time // modification times of the loaded files
	checked time.Time
}

// loadCertFiles reads the pair once; errors name the flags.
func loadCertFiles(certFile, keyFile string, now func() time.Time, log *slog.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, now: now, log: log}
	pair, stamp, err := c.read()
	if err != nil {
		return nil, fmt.Errorf("--http-tls-cert/--http-tls-key: %w", err)
	}
	c.pair, c.stamp, c.checked = pair, stamp, now()
	return c, nil
}

func (c *certFiles) read() (*tls.Certificate, [2]time.Time, error) {
	var stamp [2]time.Time
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, stamp, err
		}
		stamp[i] = fi.ModTime()
	}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, stamp, err
	}
	return &pair, stamp, nil
}

// get is tls.Config.GetCertificate.
func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.now(); t.Sub(c.checked) >= TLSRecheck || t.Before(c.checked) {
		c.checked = t
		c.reload()
	}
	return c.pair, nil
}

// reload reads the files again if their modification times changed.
func (c *certFiles) reload() {
	var stamp [2]time.Time
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			c.log.Warn("HTTP listener: cannot check the TLS files; keeping the loaded certificate", "err", err)
			return
		}
		stamp[i] = fi.ModTime()
	}
	if stamp == c.stamp {
		return
	}
	pair, stamp, err := c.read()
	if err != nil {
		// A renewal half written (certificate and key not yet a pair):
		// retried at the next check.
		c.log.Warn("HTTP listener: the TLS files changed but do not load; keeping the loaded certificate", "err", err)
		return
	}
	c.pair, c.stamp = pair, stamp
	c.log.Info("HTTP listener: loaded the renewed TLS certificate", "cert", c.certFile)
}

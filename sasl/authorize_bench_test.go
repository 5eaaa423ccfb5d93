package sasl_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// benchAuthorizeSerial times one login decision after another over ders
// (certificates stored in store) and reports their p50 and p99.
func benchAuthorizeSerial(b *testing.B, store storage.Store, ders [][]byte) {
	a := &sasl.Authorizer{Store: store, Now: func() time.Time { return certtest.Now }}
	ctx := context.Background()
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		der := ders[i%len(ders)]
		i++
		t0 := time.Now()
		if _, err := a.Authorize(ctx, sasl.Request{DER: der, Domain: "example.org"}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// benchAuthorizeParallel runs login decisions over ders from GOMAXPROCS
// goroutines and reports decisions per second.
func benchAuthorizeParallel(b *testing.B, store storage.Store, ders [][]byte) {
	a := &sasl.Authorizer{Store: store, Now: func() time.Time { return certtest.Now }}
	ctx := context.Background()
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			der := ders[next.Add(1)%uint64(len(ders))]
			if _, err := a.Authorize(ctx, sasl.Request{DER: der, Domain: "example.org"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
}

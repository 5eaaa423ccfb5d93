package enroll_test

import (
	"testing"
	"time"

	"github.com/saslcert/saslcert/enroll"
)

func TestEnrollParseRenewBefore(t *testing.T) {
	tests := []struct {
		in   string
		want enroll.RenewBefore
		err  bool
	}{
		{in: "1/3", want: enroll.RenewBefore{Fraction: 1.0 / 3}},
		{in: "33%", want: enroll.RenewBefore{Fraction: 0.33}},
		{in: "0.25", want: enroll.RenewBefore{Fraction: 0.25}},
		{in: "48h", want: enroll.RenewBefore{Duration: 48 * time.Hour}},
		{in: "never"},
		{in: "0"},
		{in: ""},
		{in: "1", err: true},
		{in: "3/2", err: true},
		{in: "1/0", err: true},
		{in: "-1h", err: true},
		{in: "0%", err: true},
		{in: "soon", err: true},
	}
	for _, tt := range tests {
		got, err := enroll.ParseRenewBefore(tt.in)
		if (err != nil) != tt.err || (err == nil && got != tt.want) {
			t.Errorf("ParseRenewBefore(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil {
			if again, err := enroll.ParseRenewBefore(got.String()); err != nil || again.Enabled() != got.Enabled() {
				t.Errorf("ParseRenewBefore(%q.String() = %q) = %+v, %v", tt.in, got.String(), again, err)
			}
		}
	}
}

func TestEnrollRenewBeforeDue(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(3 * time.Hour)
	third := enroll.RenewBefore{Fraction: 1.0 / 3}
	hour := enroll.RenewBefore{Duration: time.Hour}
	tests := []struct {
		r   enroll.RenewBefore
		at  time.Duration // after notBefore
		due bool
	}{
		{third, time.Hour, false},
		{third, 119 * time.Minute, false},
		{third, 2 * time.Hour, true},
		{third, 3 * time.Hour, false}, // expired: too late
		{hour, 119 * time.Minute, false},
		{hour, 2 * time.Hour, true},
		{enroll.RenewBefore{}, 170 * time.Minute, false},
	}
	for _, tt := range tests {
		if got := tt.r.Due(nb, na, nb.Add(tt.at)); got != tt.due {
			t.Errorf("%s: Due at +%s = %v, want %v", tt.r, tt.at, got, tt.due)
		}
	}
}

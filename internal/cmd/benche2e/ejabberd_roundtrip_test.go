package main

import (
	"strings"
	"testing"
)

func TestParseRoundTrips(t *testing.T) {
	list := func(v string) string { return "[" + strings.TrimSuffix(strings.Repeat(v+",", roundTripN), ",") + "]" }
	tests := []struct {
		name, out string
		wantErr   string
	}{
		{name: "both lists", out: "{" + list("150") + ",\n " + list("320") + "}\n"},
		{name: "a failed round trip", out: "{" + list("150") + "," + strings.Replace(list("320"), "320", "-1", 1) + "}", wantErr: "failed"},
		{name: "too few", out: "{[1,2],[3]}", wantErr: "round trips timed"},
		{name: "rpc error", out: "{badrpc,nodedown}", wantErr: "unexpected answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ping, lookup, err := parseRoundTrips(tc.out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ping) != roundTripN || len(lookup) != roundTripN || ping[0].Microseconds() != 150 || lookup[0].Microseconds() != 320 {
				t.Fatalf("got %d pings (first %v), %d lookups (first %v)", len(ping), ping[0], len(lookup), lookup[0])
			}
		})
	}
}

package ckpt

import (
	"testing"
	"time"
)

func TestSetFailpoints(t *testing.T) {
	defer SetFailpoints("")
	for _, tc := range []struct {
		spec    string
		wantErr bool
	}{
		{"commit:tx=error", false},
		{"commit:tx=sleep(1ms);commit:gc=error", false},
		{"commit:tx", true},
		{"commit:tx=explode", true},
		{"commit:tx=sleep(forever)", true},
	} {
		err := SetFailpoints(tc.spec)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, want error %v", tc.spec, err, tc.wantErr)
		}
	}
	if err := SetFailpoints("commit:tx=sleep(20ms);commit:gc=error"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := fail("commit:tx"); err != nil || time.Since(t0) < 20*time.Millisecond {
		t.Fatalf("sleep failpoint: %v after %v", err, time.Since(t0))
	}
	if fail("commit:gc") == nil {
		t.Fatal("error failpoint did not fail")
	}
	if fail("commit:chunks") != nil {
		t.Fatal("an unarmed failpoint failed")
	}
}

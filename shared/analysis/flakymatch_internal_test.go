package analysis

import (
	"testing"

	"github.com/kitefix/kitefix/shared/buildkite"
)

func TestTestMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		test buildkite.Test
		want bool
	}{
		{"TestCheckout", buildkite.Test{Name: "TestCheckout"}, true},
		{"cart › adds an item", buildkite.Test{Scope: "cart", Name: "adds an item"}, true},
		{"cart adds an item", buildkite.Test{Scope: "cart", Name: "adds an item"}, true},
		{"tests/test_api.py::test_search", buildkite.Test{Scope: "tests/test_api.py", Name: "test_search"}, true},
		{"com.acme.CartTest.addsItem", buildkite.Test{Scope: "com.acme.CartTest", Name: "addsItem"}, true},
		{"TestCart/adds_item", buildkite.Test{Scope: "TestCart", Name: "adds_item"}, true},
		{"CartTest#test_adds", buildkite.Test{Scope: "CartTest", Name: "test_adds"}, true},
		{"cart › removes an item", buildkite.Test{Scope: "cart", Name: "adds an item"}, false},
		{"adds an item", buildkite.Test{Scope: "cart", Name: "other"}, false},
		{"", buildkite.Test{Name: ""}, false},
	}
	for _, tt := range tests {
		if got := testMatches(tt.name, tt.test); got != tt.want {
			t.Errorf("testMatches(%q, %+v) = %v, want %v", tt.name, tt.test, got, tt.want)
		}
	}
}

package route

import (
	"strconv"

	"github.com/foundryhq/foundry/provider"
)

func itoa(i int) string { return strconv.Itoa(i) }

func testCall(user string) *provider.Call { return &provider.Call{User: user} }

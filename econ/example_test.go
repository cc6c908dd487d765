package econ_test

import (
	"fmt"

	"github.com/foundryhq/foundry/econ"
	"github.com/foundryhq/foundry/pricing"
)

// A teacher at gpt-4o-mini's list price, requests of 1,000 prompt and 500
// completion tokens, 10,000 a day; a student self-hosted on a $2.50/hour
// GPU generating 1,500 tokens/s, trained in two GPU-hours.
func ExampleNewBreakEven() {
	teacher, _ := pricing.New(nil).Cost("gpt-4o-mini", 1000, 0, 500)
	serving := econ.Serving{GPUHourlyUSD: 2.5, TokensPerSecond: 1500}
	student := 500 * serving.PerMillionTokens() / 1e6
	training := econ.TrainingCost(2*3600, 2.5)

	b := econ.NewBreakEven(training, teacher, student, 10000)
	fmt.Printf("student serving: $%.4f per 1M tokens\n", serving.PerMillionTokens())
	fmt.Printf("per request: teacher $%.6f, student $%.6f\n", b.TeacherPerRequestUSD, b.StudentPerRequestUSD)
	fmt.Printf("break-even after %.0f requests, %.1f days; then $%.2f saved a month\n", b.Requests, b.Days, b.MonthlySavingsUSD)
	// Output:
	// student serving: $0.4630 per 1M tokens
	// per request: teacher $0.000450, student $0.000231
	// break-even after 22881 requests, 2.3 days; then $65.56 saved a month
}

// Package econ is Foundry's unit economics: what traffic costs per model,
// route, project and day (from the store's captured costs, priced by the
// one price table in package pricing), what a self-hosted student costs to
// serve (GPU $/hour and measured throughput) and to train (a training
// job's device time), revenue and margin, and the break-even point after
// which moving traffic from the teacher to the student has paid for the
// training.
package econ

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/foundryhq/foundry/pricing"
)

// Serving is the cost of serving a model on hardware you pay for by the hour.
type Serving struct {
	GPUHourlyUSD float64 `json:"gpu_hourly_usd"` // what the GPU (or node) costs per hour
	// TokensPerSecond is the measured generation throughput under load:
	// completion tokens per second over all concurrent requests. Prompt
	// processing is taken to be part of what the measurement paid for.
	TokensPerSecond float64 `json:"tokens_per_second"`
}

// Check reports a Serving that cannot price anything.
func (s Serving) Check() error {
	if !(s.GPUHourlyUSD > 0) || math.IsInf(s.GPUHourlyUSD, 0) {
		return fmt.Errorf("GPU price %v $/hour: give what the GPU costs per hour, e.g. 2.50", s.GPUHourlyUSD)
	}
	if !(s.TokensPerSecond > 0) || math.IsInf(s.TokensPerSecond, 0) {
		return fmt.Errorf("throughput %v tokens/s: give the measured generation throughput, e.g. 1500 (foundry engine bench measures it)", s.TokensPerSecond)
	}
	return nil
}

// PerMillionTokens is the serving cost of 1M generated tokens:
// GPU $/hour ÷ (tokens/s × 3600 s/hour) × 1e6.
func (s Serving) PerMillionTokens() float64 {
	return s.GPUHourlyUSD / (s.TokensPerSecond * 3600) * 1e6
}

// Price is the serving cost as a price-table entry: output tokens at
// PerMillionTokens, input tokens free (paid for within the throughput).
func (s Serving) Price() pricing.Price { return pricing.Price{Output: s.PerMillionTokens()} }

// TrainingCost is the cost of deviceSeconds of training at gpuHourlyUSD.
func TrainingCost(deviceSeconds, gpuHourlyUSD float64) float64 {
	return deviceSeconds / 3600 * gpuHourlyUSD
}

// Job is what economics needs of a training job: the job.json a training
// run writes into its output directory.
type Job struct {
	ID            string  `json:"id"`
	Status        string  `json:"status"`
	Device        string  `json:"device"`
	DeviceSeconds float64 `json:"device_seconds"`
	CostUSD       float64 `json:"cost_usd"` // device_seconds at the price the job was given; 0 when none
}

// ReadJob reads dir/job.json (or dir itself when it names the file). It
// decodes only the fields above, so that econ does not depend on the
// training package and its ML runtime.
func ReadJob(dir string) (Job, error) {
	path := dir
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		path = filepath.Join(dir, "job.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Job{}, fmt.Errorf("read training job: %w (give the job's output directory, which holds job.json)", err)
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return Job{}, fmt.Errorf("training job %s: %w", path, err)
	}
	if j.DeviceSeconds < 0 || j.CostUSD < 0 {
		return Job{}, fmt.Errorf("training job %s: negative device time or cost", path)
	}
	return j, nil
}

// Cost is the job's training cost: its device time at gpuHourlyUSD when
// that is given, else the cost the job recorded.
func (j Job) Cost(gpuHourlyUSD float64) (float64, error) {
	if gpuHourlyUSD > 0 {
		return TrainingCost(j.DeviceSeconds, gpuHourlyUSD), nil
	}
	if j.CostUSD > 0 {
		return j.CostUSD, nil
	}
	return 0, errors.New("the training job recorded no cost: give the GPU's price per hour (--gpu-hourly) to price its device time")
}

// BreakEven is when training a student pays for itself: after N requests
// the teacher would have cost N × teacher, the student training + N ×
// student, so N* = training / (teacher − student), never when the student
// is not cheaper per request.
type BreakEven struct {
	Student string `json:"student,omitempty"`
	Teacher string `json:"teacher,omitempty"`

	TrainingUSD          float64 `json:"training_usd"`
	TeacherPerRequestUSD float64 `json:"teacher_per_request_usd"`
	StudentPerRequestUSD float64 `json:"student_per_request_usd"`
	SavingPerRequestUSD  float64 `json:"saving_per_request_usd"` // teacher − student; ≤ 0: never

	Never bool `json:"never"`
	// Requests is N*; +Inf (null in JSON) when Never.
	Requests float64 `json:"-"`
	// RequestsPerDay is the current volume of the traffic the student would take.
	RequestsPerDay float64 `json:"requests_per_day"`
	// Days is N* at the current volume; +Inf (null) when Never or without traffic.
	Days float64 `json:"-"`
	// MonthlySavingsUSD is 30 days of the current volume × the saving per
	// request, once training is paid off (negative when the student costs more).
	MonthlySavingsUSD float64 `json:"monthly_savings_usd"`

	// How the per-request costs were found, for people reading the report.
	TeacherBasis string `json:"teacher_basis,omitempty"`
	StudentBasis string `json:"student_basis,omitempty"`
	TrainingNote string `json:"training_basis,omitempty"`
}

// NewBreakEven computes the break-even of a training cost against per-request costs.
func NewBreakEven(trainingUSD, teacherPerRequestUSD, studentPerRequestUSD, requestsPerDay float64) BreakEven {
	b := BreakEven{TrainingUSD: trainingUSD, TeacherPerRequestUSD: teacherPerRequestUSD, StudentPerRequestUSD: studentPerRequestUSD,
		SavingPerRequestUSD: teacherPerRequestUSD - studentPerRequestUSD, RequestsPerDay: requestsPerDay}
	b.MonthlySavingsUSD = requestsPerDay * 30 * b.SavingPerRequestUSD
	if b.SavingPerRequestUSD <= 0 {
		b.Never, b.Requests, b.Days = true, math.Inf(1), math.Inf(1)
		return b
	}
	b.Requests = trainingUSD / b.SavingPerRequestUSD
	b.Days = math.Inf(1)
	if requestsPerDay > 0 {
		b.Days = b.Requests / requestsPerDay
	}
	return b
}

// MarshalJSON writes Requests and Days as numbers, or null when infinite.
func (b BreakEven) MarshalJSON() ([]byte, error) {
	type plain BreakEven
	finite := func(f float64) *float64 {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil
		}
		return &f
	}
	return json.Marshal(struct {
		plain
		Requests *float64 `json:"requests"`
		Days     *float64 `json:"days"`
	}{plain(b), finite(b.Requests), finite(b.Days)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (b *BreakEven) UnmarshalJSON(data []byte) error {
	type plain BreakEven
	var v struct {
		plain
		Requests *float64 `json:"requests"`
		Days     *float64 `json:"days"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*b = BreakEven(v.plain)
	b.Requests, b.Days = math.Inf(1), math.Inf(1)
	if v.Requests != nil {
		b.Requests = *v.Requests
	}
	if v.Days != nil {
		b.Days = *v.Days
	}
	return nil
}

// Revenue is what traffic earns: per request, or per seat per month.
type Revenue struct {
	PerRequestUSD   float64 `json:"per_request_usd,omitempty"`
	PerSeatMonthUSD float64 `json:"per_seat_month_usd,omitempty"`
	Seats           int     `json:"seats,omitempty"`
}

// Zero reports whether no revenue is set.
func (r Revenue) Zero() bool { return r.PerRequestUSD == 0 && (r.PerSeatMonthUSD == 0 || r.Seats == 0) }

// Earned is the revenue of requests over days.
func (r Revenue) Earned(requests int64, days float64) float64 {
	return float64(requests)*r.PerRequestUSD + float64(r.Seats)*r.PerSeatMonthUSD*days/30
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/econ"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/pricing"
)

func newCostsCmd() *cobra.Command {
	var (
		cfgPath, since, until, by, project, route, model, student, teacher, jobDir string
		trainingCost, gpuHourly, throughput, perRequest, perSeat                   float64
		seats                                                                      int
		asJSON                                                                     bool
	)
	cmd := &cobra.Command{
		Use:   "costs",
		Short: "Costs per model, route, project or day, revenue and margin, and when a trained student pays for itself",
		Long: `Costs of the captured traffic in a window, grouped by model, route, project or day.

With --student and --teacher it adds the break-even: the requests N* after which
training cost + N × student cost per request < N × teacher cost per request,
N* = training / (teacher − student), the days that takes at the teacher's current
volume, and the monthly savings after. The student is priced as self-hosted from
--gpu-hourly and its measured generation throughput --student-throughput (tokens/s),
else from the price table; training cost is --training-cost, or a training job's
device time (--job DIR) at --gpu-hourly.`,
		Example: `  foundry costs --since 7d --by route
  foundry costs --student support-v3 --teacher gpt-4o-mini --job runs/support-v3 --gpu-hourly 2.5 --student-throughput 1500
  foundry costs --student support-v3 --teacher gpt-4o-mini --training-cost 12 --revenue-per-request 0.002 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := config.Load(cfgPath, nil)
			if err != nil {
				return err
			}
			v := url.Values{"since": {since}, "until": {until}, "project": {project}, "route": {route}, "model": {model}}
			q, err := gateway.ParseQuery(v, time.Now())
			if err != nil {
				return fmt.Errorf("costs: %w", err)
			}
			o := econ.Options{Filter: q, Since: q.Since, Until: q.Until, By: by, Prices: pricing.New(cfg.Prices),
				Student: student, Teacher: teacher, TrainingUSD: trainingCost,
				Revenue: econ.Revenue{PerRequestUSD: perRequest, PerSeatMonthUSD: perSeat, Seats: seats}}
			if (student == "") != (teacher == "") {
				return errors.New("costs: the break-even needs both --student and --teacher")
			}
			if jobDir != "" {
				if cmd.Flags().Changed("training-cost") {
					return errors.New("costs: give --training-cost or --job, not both")
				}
				job, err := econ.ReadJob(jobDir)
				if err != nil {
					return err
				}
				if o.TrainingUSD, err = job.Cost(gpuHourly); err != nil {
					return fmt.Errorf("costs: job %s: %w", jobDir, err)
				}
				o.TrainingNote = fmt.Sprintf("job %s: %.0f device-seconds", jobDir, job.DeviceSeconds)
				if gpuHourly > 0 {
					o.TrainingNote += fmt.Sprintf(" at $%g/hour", gpuHourly)
				}
			}
			if throughput > 0 || (gpuHourly > 0 && student != "" && jobDir == "") {
				o.Serving = &econ.Serving{GPUHourlyUSD: gpuHourly, TokensPerSecond: throughput}
				if err := o.Serving.Check(); err != nil {
					return fmt.Errorf("costs: self-hosted student: %w (--gpu-hourly and --student-throughput)", err)
				}
			}
			st, err := openStore(ctx, cfg.DB)
			if err != nil {
				return err
			}
			defer st.Close()
			r, err := econ.Build(ctx, st, o)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return r.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "config file (store location, prices; FOUNDRY_DB overrides)")
	f.StringVar(&since, "since", "30d", "from this time: RFC 3339, a date, Unix seconds, or a duration ago (24h, 30d)")
	f.StringVar(&until, "until", "", "before this time (default now)")
	f.StringVar(&by, "by", econ.ByModel, "group rows by model, route, project or day")
	f.StringVar(&project, "project", "", "only this project's traffic")
	f.StringVar(&route, "route", "", "only these routes (comma-separated)")
	f.StringVar(&model, "model", "", "only these models (comma-separated)")
	f.StringVar(&student, "student", "", "break-even: the trained model that would take the traffic")
	f.StringVar(&teacher, "teacher", "", "break-even: the model whose traffic it takes (priced from captured cost, else the price table)")
	f.Float64Var(&trainingCost, "training-cost", 0, "break-even: what training the student cost, USD")
	f.StringVar(&jobDir, "job", "", "break-even: a training job's output directory (job.json); its device time is priced at --gpu-hourly")
	f.Float64Var(&gpuHourly, "gpu-hourly", 0, "GPU price in USD per hour (training job and self-hosted student)")
	f.Float64Var(&throughput, "student-throughput", 0, "the self-hosted student's measured generation throughput, tokens/s")
	f.Float64Var(&perRequest, "revenue-per-request", 0, "revenue per request, USD")
	f.Float64Var(&perSeat, "revenue-per-seat", 0, "revenue per seat per month, USD (with --seats)")
	f.IntVar(&seats, "seats", 0, "paying seats")
	f.BoolVar(&asJSON, "json", false, "the report as JSON")
	return cmd
}

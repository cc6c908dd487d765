// Drives the dashboard in a real Chromium (Debian's /usr/bin/chromium) with
// playwright-core, as a user would: log in, look at the overview's charts,
// filter the traffic table, open a call, leave feedback, look at costs and
// the break-even, then a dataset's funnel, a training job's loss curves
// (growing while it runs), an eval's metric charts and a route's split.
// Screenshots go to SCREENSHOT_DIR. Run by web/browser_test.go:
//
//   FOUNDRY_NPM_DIR=.cache/npm FOUNDRY_DASHBOARD_KEY=... node web/testdata/browser.mjs URL SCREENSHOT_DIR
//
// Exits non-zero with a message naming the step that failed.
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [url, shots] = process.argv.slice(2);
if (!url || !shots) {
  console.error("usage: node browser.mjs URL SCREENSHOT_DIR");
  process.exit(2);
}
const npmDir = process.env.FOUNDRY_NPM_DIR || ".cache/npm";
const require = createRequire(path.join(path.resolve(npmDir), "package.json"));
const { chromium } = require("playwright-core");
const key = process.env.FOUNDRY_DASHBOARD_KEY || "";
const exe = process.env.FOUNDRY_CHROMIUM || "/usr/bin/chromium";
// job.json of a running job: the test appends steps to it and waits for the page's poll.
const liveJob = process.env.FOUNDRY_LIVE_JOB || "";

fs.mkdirSync(shots, { recursive: true });
fs.rmSync(path.join(shots, "failure.png"), { force: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "foundry-chromium-"));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: exe,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1440, height: 900 },
  colorScheme: "light",
  timeout: 60000,
});
const page = ctx.pages()[0] || (await ctx.newPage());
page.setDefaultTimeout(15000);

// Any script error, CSP violation or failed load fails the run (once logged
// in: the wrong-key attempt's 401 is expected).
const problems = [];
let watching = !key;
page.on("pageerror", (e) => problems.push("page error: " + e.message));
page.on("console", (m) => { if (watching && m.type() === "error") problems.push("console error: " + m.text() + " " + JSON.stringify(m.location())); });
page.on("requestfailed", (r) => problems.push("request failed: " + r.url() + " " + (r.failure()?.errorText || "")));
page.on("response", (r) => { if (watching && r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`); });

let step = "start";
const log = (msg) => console.log("browser: " + msg);
function check(cond, msg) {
  if (!cond) throw new Error(msg);
}
async function canvasSize(selector) {
  const el = page.locator(selector).first();
  await el.waitFor({ state: "visible" });
  const box = await el.boundingBox();
  return box ? { w: Math.round(box.width), h: Math.round(box.height) } : { w: 0, h: 0 };
}
const rowCount = () => page.locator("tr.rec").count();
const matchCount = async () => Number((await page.locator("#match-count strong").innerText()).replace(/,/g, ""));

try {
  step = "log in";
  await page.goto(url + "/");
  if (key) {
    check(page.url().includes("/ui/login"), "with an admin key set, / did not send the browser to the login form (at " + page.url() + ")");
    await page.fill("#key", "wrong-" + key);
    await page.click("button[type=submit]");
    await page.getByText("That is not the admin key").waitFor();
    await page.screenshot({ path: path.join(shots, "login.png") });
    await page.fill("#key", key);
    await Promise.all([page.waitForURL(url + "/"), page.click("button[type=submit]")]);
    watching = true;
  }

  step = "overview charts";
  await page.locator("#stat-requests").waitFor();
  const chart = await canvasSize("[data-chart=requests] canvas");
  const spark = await canvasSize("[data-spark=requests] canvas");
  check(chart.w > 100 && chart.h > 50, `the overview's requests chart has size ${chart.w}x${chart.h}`);
  check(spark.w > 20 && spark.h > 10, `the overview's sparkline has size ${spark.w}x${spark.h}`);
  log(`overview: requests chart ${chart.w}x${chart.h}, sparkline ${spark.w}x${spark.h}`);
  await page.screenshot({ path: path.join(shots, "overview.png") });

  step = "traffic table";
  await Promise.all([page.waitForURL(/\/ui\/traffic/), page.click("nav a[href='/ui/traffic']")]);
  await page.locator("tr.rec").first().waitFor();
  const allRows = await rowCount();
  const allMatch = await matchCount();
  check(allRows > 0, "the traffic table has no rows");
  log(`traffic: ${allRows} rows of ${allMatch} calls`);
  await page.screenshot({ path: path.join(shots, "traffic.png") });

  step = "traffic filter";
  await page.selectOption("select[name=status]", "error");
  await page.waitForFunction((n) => {
    const s = document.querySelector("#match-count strong");
    return s && Number(s.textContent.replace(/,/g, "")) !== n;
  }, allMatch);
  const errRows = await rowCount();
  const errMatch = await matchCount();
  check(errRows > 0 && errRows < allRows && errMatch < allMatch, `filtering on errors left ${errRows} rows / ${errMatch} calls (was ${allRows} / ${allMatch})`);
  const okPills = await page.locator("tr.rec .status.ok").count();
  check(okPills === 0, `${okPills} successful calls are listed under status=error`);
  check(page.url().includes("status=error"), "the address bar does not keep the filter: " + page.url());
  log(`filter status=error: ${errRows} rows of ${errMatch} calls`);
  await page.screenshot({ path: path.join(shots, "traffic-errors.png") });

  step = "clear filter";
  await page.selectOption("select[name=status]", "");
  await page.waitForFunction((n) => Number(document.querySelector("#match-count strong").textContent.replace(/,/g, "")) === n, allMatch);

  step = "older calls";
  if (await page.locator("#older").count()) {
    await page.click("#older");
    await page.waitForFunction((n) => document.querySelectorAll("tr.rec").length > n, allRows);
    log(`older: ${await rowCount()} rows after one click`);
    check(!(await page.isChecked("#live")), "live polling stays on after loading older calls");
  }

  step = "request detail";
  await Promise.all([page.waitForURL(/\/ui\/requests\//), page.locator("tr.rec td:nth-child(2)").first().click()]);
  await page.locator(".bubble.role-user").first().waitFor();
  check((await page.locator(".bubble").count()) >= 2, "the call's conversation has fewer than two bubbles");
  await page.click("#raw-request summary");
  await page.locator("#raw-request pre").waitFor({ state: "visible" });

  step = "feedback";
  await page.fill("input[name=score]", "1");
  await page.fill("input[name=label]", "good");
  await page.fill("textarea[name=comment]", "Classified correctly, from the browser test.");
  await page.click(".feedback-form button[type=submit]");
  await page.getByText("Feedback saved.").waitFor();
  await page.getByText("Classified correctly, from the browser test.").first().waitFor();
  await page.screenshot({ path: path.join(shots, "request.png"), fullPage: true });

  step = "tool call detail";
  await page.goto(url + "/ui/requests/req_fixture_toolcall");
  await page.locator(".bubble.role-tool").waitFor();
  await page.locator(".tool-call").getByText("lookup_order").waitFor();
  await page.screenshot({ path: path.join(shots, "request-tools.png"), fullPage: true });

  step = "costs charts";
  await Promise.all([page.waitForURL(/\/ui\/costs/), page.click("nav a[href='/ui/costs']")]);
  for (const name of ["spend", "requests", "tokens", "errorrate"]) {
    const s = await canvasSize(`[data-chart=${name}] canvas`);
    check(s.w > 100 && s.h > 50, `the costs page's ${name} chart has size ${s.w}x${s.h}`);
  }
  const legend = await page.locator("[data-chart=spend] .u-legend").innerText();
  check(legend.includes("gpt-4o"), "the spend chart's legend does not name the models: " + legend);
  const be = await canvasSize("[data-chart=breakeven] canvas");
  check(be.w > 100 && be.h > 50, `the break-even chart has size ${be.w}x${be.h}`);
  const nStar = await page.locator("#n-star").innerText();
  log(`costs: break-even at N* = ${nStar} requests, chart ${be.w}x${be.h}`);
  await page.screenshot({ path: path.join(shots, "costs.png"), fullPage: true });

  step = "datasets";
  await Promise.all([page.waitForURL(/\/ui\/datasets$/), page.click("nav a[href='/ui/datasets']")]);
  await page.locator("tr.rec").first().waitFor();
  await page.screenshot({ path: path.join(shots, "datasets.png") });
  await Promise.all([page.waitForURL(/\/ui\/datasets\/.+\/.+/), page.locator("tr.rec td:nth-child(3)").first().click()]);
  const hist = await canvasSize("[data-chart=histogram] canvas");
  check(hist.w > 100 && hist.h > 50, `the token-length histogram has size ${hist.w}x${hist.h}`);
  const bars = await page.locator(".funnel-out").evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width));
  check(bars.length >= 4 && bars.every((w) => w > 0) && bars[bars.length - 1] < bars[0], "funnel bars: " + JSON.stringify(bars));
  const drops = await page.locator(".funnel-reason").count();
  check(drops >= 3, `the funnel shows ${drops} drop reasons, want at least 3`);
  check((await page.locator(".sample .bubble").count()) >= 3, "the sample rows have no chat bubbles");
  log(`dataset: histogram ${hist.w}x${hist.h}, ${bars.length} funnel stages, ${drops} drop reasons`);
  await page.screenshot({ path: path.join(shots, "dataset.png"), fullPage: true });

  step = "training";
  await Promise.all([page.waitForURL(/\/ui\/training$/), page.click("nav a[href='/ui/training']")]);
  await page.locator("tr.rec").first().waitFor();
  await page.screenshot({ path: path.join(shots, "training.png") });
  await Promise.all([page.waitForURL(/\/ui\/training\/.+/), page.locator("tr.rec:has(.status.ok) td:nth-child(4)").first().click()]);
  const loss = await canvasSize("[data-chart=loss] canvas");
  check(loss.w > 100 && loss.h > 50, `the loss chart has size ${loss.w}x${loss.h}`);
  const lossLegend = await page.locator("[data-chart=loss] .u-legend").innerText();
  check(lossLegend.includes("Train") && lossLegend.includes("Validation"), "the loss chart's legend: " + lossLegend);
  await page.screenshot({ path: path.join(shots, "job.png"), fullPage: true });

  step = "training: live job";
  await page.goto(url + "/ui/training");
  await Promise.all([page.waitForURL(/\/ui\/training\/.+/), page.locator("tr.rec:has(.status.warn) td:nth-child(4)").first().click()]);
  await canvasSize("[data-chart=loss] canvas");
  const points = () => page.evaluate(() => document.querySelector("[data-chart=loss]").loss.data[0].length);
  const before = await points();
  if (liveJob) {
    // The run writes more steps; the page's next poll (every 3 s) draws them.
    const j = JSON.parse(fs.readFileSync(liveJob, "utf8"));
    for (let s = j.step + 1; s <= j.step + 10; s++) j.train_loss.push({ step: s, loss: 1.5 + 1 / s });
    j.step += 10;
    fs.writeFileSync(liveJob + ".tmp", JSON.stringify(j));
    fs.renameSync(liveJob + ".tmp", liveJob);
    await page.waitForFunction((n) => document.querySelector("[data-chart=loss]").loss.data[0].length > n, before, { timeout: 10000 });
    log(`live job: ${before} → ${await points()} steps after a poll`);
  }

  step = "evals";
  await Promise.all([page.waitForURL(/\/ui\/evals$/), page.click("nav a[href='/ui/evals']")]);
  await page.locator("tr.rec").first().waitFor();
  await Promise.all([page.waitForURL(/\/ui\/evals\/.+/), page.locator("tr.rec td:nth-child(3)").first().click()]);
  const metrics = await page.locator("[data-chart=metric]").count();
  check(metrics >= 4, `the eval shows ${metrics} metric charts`);
  for (let i = 0; i < metrics; i++) {
    const s = await canvasSize(`[data-chart=metric][data-index="${i}"] canvas`);
    check(s.w > 100 && s.h > 50, `metric chart ${i} has size ${s.w}x${s.h}`);
  }
  for (const name of ["winrate", "latency"]) {
    const s = await canvasSize(`[data-chart=${name}] canvas`);
    check(s.w > 100 && s.h > 50, `the eval's ${name} chart has size ${s.w}x${s.h}`);
  }
  check((await page.locator(".side-by-side .answer").count()) >= 4, "no answers side by side");
  log(`eval: ${metrics} metric charts, win rate and latency drawn`);
  await page.screenshot({ path: path.join(shots, "eval.png"), fullPage: true });

  step = "routes";
  await Promise.all([page.waitForURL(/\/ui\/routes$/), page.click("nav a[href='/ui/routes']")]);
  await page.locator(".split-bar").first().waitFor();
  await page.screenshot({ path: path.join(shots, "routes.png") });
  await Promise.all([page.waitForURL(/\/ui\/routes\/support-bot/), page.click("a[href='/ui/routes/support-bot']")]);
  for (const name of ["split", "escalations"]) {
    const s = await canvasSize(`[data-chart=${name}] canvas`);
    check(s.w > 100 && s.h > 50, `the route's ${name} chart has size ${s.w}x${s.h}`);
  }
  const splitLegend = await page.locator("[data-chart=split] .u-legend").innerText();
  check(splitLegend.includes("teacher") && splitLegend.includes("student"), "the split chart's legend does not name the arms: " + splitLegend);
  const events = await page.locator(".timeline .event").count();
  const rollbacks = await page.locator(".timeline .event.rollback").count();
  check(events === 3 && rollbacks === 1, `the history shows ${events} versions and ${rollbacks} rollbacks, want 3 and 1`);
  log(`route: split and escalations drawn, ${events} versions in the history`);
  await page.screenshot({ path: path.join(shots, "route.png"), fullPage: true });

  step = "page errors";
  check(problems.length === 0, problems.join("\n"));
  log("ok: " + fs.readdirSync(shots).filter((f) => f.endsWith(".png")).sort().join(", ") + " in " + shots);
} catch (e) {
  console.error(`browser test failed at step "${step}" (page ${page.url()}): ${e.message}`);
  if (problems.length) console.error("also seen in the page:\n  " + problems.join("\n  "));
  try { await page.screenshot({ path: path.join(shots, "failure.png"), fullPage: true }); } catch {}
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}
await ctx.close();
fs.rmSync(profile, { recursive: true, force: true });

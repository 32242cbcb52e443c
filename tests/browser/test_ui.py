"""The browser UI in headless Chromium against the running API and a real worker.

Each test drives the pages the way a user does (typing, dropping files, clicking) and checks
what the page shows against the API's own view of the same objects.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.common import synth
from tests.common.audio_files import silent, song
from tests.common.stack import no_worker, wait_job

TERMINAL = ("succeeded", "failed", "cancelled")

# --- helpers ----------------------------------------------------------------------------------


def api_voice(stack, user: str, name: str) -> dict:
    with stack.client(user) as c:
        r = c.post("/api/v1/voices", json={"name": name})
        assert r.status_code == 201, r.text
        return r.json()


def api_upload(stack, user: str, voice_id: str, path: Path, wait: bool = True) -> dict:
    with stack.client(user) as c:
        r = c.post(
            f"/api/v1/voices/{voice_id}/tracks",
            files=[("files", (path.name, path.read_bytes(), "audio/wav"))],
            data={"vocals_only": "true"},
        )
        assert r.status_code == 201, r.text
        out = r.json()
        if wait:
            out["job"] = wait_job(c, out["job"]["id"], timeout=60)
        return out


def api_job(stack, user: str, job_id: str) -> dict:
    with stack.client(user) as c:
        return c.get(f"/api/v1/jobs/{job_id}").json()


def create_voice_in_ui(page, name: str) -> str:
    form = page.get_by_role("form", name="New voice")  # (the import form has a name too)
    form.get_by_label("Name").fill(name)
    form.get_by_role("button", name="Create voice").click()
    page.get_by_role("heading", name=name, exact=True).wait_for()
    return page.url.rsplit("/", 1)[-1]


def play_muted(page, locator, min_seconds: float = 0.25) -> dict:
    """Start an <audio> element (muted, so no audio device is needed) and wait until its clock
    advances: proof the browser fetched, decoded and is playing the file."""
    handle = locator.element_handle()
    page.evaluate("async (a) => { a.muted = true; await a.play(); }", handle)
    page.wait_for_function(
        "([a, s]) => a.currentTime > s && !a.paused && a.readyState >= 2",
        arg=[handle, min_seconds],
        timeout=20_000,
    )
    state = page.evaluate(
        "(a) => ({t: a.currentTime, d: a.duration, err: a.error && a.error.code})", handle
    )
    page.evaluate("(a) => a.pause()", handle)
    return state


def wait_job_status(stack, user, job_id, timeout, statuses=TERMINAL, page=None, samples=None):
    """Poll the API until the job reaches one of ``statuses``; optionally sample the progress
    bar the page shows meanwhile (to prove it moves without a reload)."""
    deadline = time.monotonic() + timeout
    job = api_job(stack, user, job_id)
    while job["status"] not in statuses and time.monotonic() < deadline:
        if page is not None and samples is not None:
            value = page.evaluate(
                "(id) => { const p = document.querySelector(`section.job[data-job-id='${id}'] "
                "progress`); return p ? p.value : null; }",
                job_id,
            )
            if value is not None:
                samples.add(round(value, 3))
        time.sleep(0.25)
        job = api_job(stack, user, job_id)
    return job


def assert_controls_labelled(page) -> None:
    """Every visible form control and button has an accessible name (label, aria-label or
    text), and can be reached with the keyboard (no negative tabindex)."""
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter((el) => el.type !== 'file' && el.getClientRects().length > 0)
            .filter((el) => {
                const label = el.getAttribute('aria-label')
                    || [...(el.labels || [])].map((l) => l.textContent.trim()).join(' ')
                    || (el.tagName === 'BUTTON' ? el.textContent.trim() : '');
                return !label || el.tabIndex < 0;
            })
            .map((el) => el.outerHTML.slice(0, 160))"""
    )
    assert not unnamed, f"controls without a label: {unnamed}"


def assert_plain_error_shown(page, scope: str, job: dict) -> None:
    """The job's error message is on the page, as the user-facing words (no traceback)."""
    alert = page.locator(f"{scope} [role=alert]")
    alert.wait_for()
    text = alert.inner_text()
    assert job["error"] and job["error"] in text
    assert "Traceback" not in text and 'File "' not in text


# --- tests ------------------------------------------------------------------------------------


def test_login_with_bad_and_good_token(open_session, stack):
    s = open_session(None)
    page = s.page
    s.goto("#/voices")
    page.get_by_label("Access token").fill("svc_this-is-not-a-token")
    page.get_by_role("button", name="Sign in").click()
    err = page.get_by_role("alert")
    err.wait_for()
    assert "not valid" in err.inner_text()
    assert page.locator("#nav").is_hidden()
    assert_controls_labelled(page)
    s.shot("01-login-bad-token")

    page.get_by_label("Access token").fill(stack.tokens["alice"])
    page.keyboard.press("Enter")  # the form submits from the keyboard
    page.get_by_role("heading", name="Voices", exact=True).wait_for()
    assert page.locator("#user-name").inner_text() == "alice"
    assert page.get_by_role("navigation", name="Main").is_visible()

    page.reload()  # the HttpOnly cookie keeps the session
    page.get_by_role("heading", name="Voices", exact=True).wait_for()
    session = {c["name"]: c for c in page.context.cookies()}["svc_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert stack.tokens["alice"] not in session["value"]  # a session id, not the token
    s.shot("02-voices")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Access token").wait_for()
    with stack.client() as anon:
        cookies = {c.name: c.value for c in page.context.cookies()}
        assert "svc_session" not in cookies
        assert anon.get("/api/v1/me").status_code == 401


def test_drag_and_drop_upload_with_progress_then_play(open_session, stack, tmp_path):
    s = open_session("alice")
    page = s.page
    voice_id = create_voice_in_ui(page, "Aria")
    # a stereo file large enough to show progress under a throttled upload, and a small one
    big = song(tmp_path / "big.wav", seconds=8, channels=2, f0=262)
    small = song(tmp_path / "small.wav", seconds=3, f0=330)
    page.get_by_label("These files are vocals only").check()

    with s.slow_upload(600_000):
        s.drop_files(".dropzone", [big, small])
        # the big file's own bar is part-way: per-file progress, not one bar for the batch
        page.wait_for_function(
            "() => { const li = document.querySelector('li[data-file=\"big.wav\"]');"
            " return li && +li.dataset.progress > 0.05 && +li.dataset.progress < 0.95; }",
            timeout=20_000,
        )
        assert page.locator('li[data-file="small.wav"]').get_attribute("data-state") == "waiting"
        s.shot("03-upload-progress")
        page.wait_for_selector('li[data-file="big.wav"]:not([data-state="uploading"])')

    for name in ("big.wav", "small.wav"):
        item = page.locator(f'li[data-file="{name}"][data-state="ready"]')
        item.wait_for(timeout=60_000)  # decoded by the worker; the page follows the job live
        assert "Ready:" in item.inner_text()
    assert "stereo" in page.locator('li[data-file="big.wav"]').inner_text()

    rows = page.locator("#tracks tbody tr")
    page.wait_for_function(
        "() => document.querySelectorAll('#tracks tr[data-status=ready]').length == 2"
    )
    assert rows.count() == 2
    for i in range(2):
        assert "vocals only" in rows.nth(i).inner_text()
    with stack.client("alice") as c:
        tracks = c.get(f"/api/v1/voices/{voice_id}/tracks").json()
    assert sorted(t["filename"] for t in tracks) == ["big.wav", "small.wav"]
    assert all(t["vocals_only"] and t["status"] == "ready" for t in tracks)

    big_row = page.locator("#tracks tr", has_text="big.wav")
    state = play_muted(page, big_row.locator("audio"))
    assert state["err"] is None
    assert state["d"] == pytest.approx(8.0, abs=0.05)
    assert_controls_labelled(page)
    s.shot("04-voice-tracks")


def test_bad_files_show_readable_errors(open_session, stack, tmp_path):
    s = open_session("alice")
    page = s.page
    voice = api_voice(stack, "alice", "Bad files")
    s.goto(f"#/voices/{voice['id']}")
    page.get_by_role("heading", name="Bad files").wait_for()
    quiet = silent(tmp_path / "quiet.wav", seconds=2)
    s.drop_files(".dropzone", [("notes.txt", b"these are my lyrics, not audio\n" * 40), quiet])

    garbage = page.locator('li[data-file="notes.txt"][data-state="failed"]')
    garbage.wait_for()
    assert "not an audio file" in garbage.inner_text()
    assert "Upload failed" in garbage.inner_text()

    muted = page.locator('li[data-file="quiet.wav"][data-state="failed"]')
    muted.wait_for(timeout=60_000)
    assert "silent" in muted.inner_text()
    row = page.locator("#tracks tr[data-status=failed]", has_text="quiet.wav")
    row.wait_for()
    assert "silent" in row.inner_text()
    assert row.locator("audio").count() == 0  # nothing to play
    s.shot("05-bad-files")


def test_import_a_so_vits_svc_5_0_voice(open_session, stack, tmp_path):
    """The import form takes a singer's 5.0 model + speaker0.spk.npy (+ its config) and
    opens the new, ready voice; a model without its speaker vector is refused in the page."""
    import numpy as np

    from tests.common import sovits5_golden as G

    files = G.write_layouts("tiny", tmp_path)
    spk = tmp_path / "speaker0.spk.npy"
    np.save(spk, G.inputs("tiny")["spk"])
    s = open_session("alice")
    page = s.page
    s.goto("#/voices")
    page.get_by_text("Import a voice instead").click()
    form = page.get_by_role("form", name="Import a voice")
    form.get_by_label("Voice package (.zip) or so-vits-svc 5.0 model (.pth)").set_input_files(
        str(files["export"])
    )
    form.get_by_role("button", name="Import voice").click()
    alert = form.get_by_role("alert")
    alert.wait_for()
    assert "speaker vector" in alert.inner_text()
    form.get_by_label("Speaker vector (.spk.npy)").set_input_files(str(spk))
    form.get_by_label("5.0 config (.yaml)").set_input_files(str(G.hparams_path("tiny")))
    form.get_by_label("Voice name").fill("Singer from 5.0")
    form.get_by_role("button", name="Import voice").click()
    page.get_by_role("heading", name="Singer from 5.0").wait_for(timeout=60_000)
    voice_id = page.url.rsplit("/", 1)[-1]
    with stack.client("alice") as c:
        v = c.get(f"/api/v1/voices/{voice_id}").json()
    assert v["status"] == "ready" and v["settings"]["features"]["speaker_encoder"] == "sovits5"
    s.shot("05b-imported-5.0-voice")


def test_training_progress_and_plain_failure(open_session, stack, tmp_path):
    voice = api_voice(stack, "alice", "Trainee")
    api_upload(stack, "alice", voice["id"], song(tmp_path / "ref.wav", seconds=3))
    s = open_session("alice")
    page = s.page
    s.goto(f"#/voices/{voice['id']}")
    page.get_by_label("Model size").select_option("tiny")
    page.get_by_label("Pitch (F0) method").select_option("dio")
    page.get_by_label("Stop after epochs").fill("2")
    # the encoders installed here (the defaults are not: the server would refuse at once)
    page.get_by_text("More training options").click()
    page.get_by_label("Whisper PPG model").fill(stack.assets["ppg_model"])
    page.get_by_role("button", name="Start training").click()

    view = page.locator("#train-job section.job")
    view.wait_for()
    job_id = view.get_attribute("data-job-id")
    with stack.client("alice") as c:
        sent = c.get(f"/api/v1/jobs/{job_id}").json()
    assert sent["kind"] == "voice" and sent["params"]["config"] == "tiny"
    assert sent["params"]["f0_method"] == "dio" and sent["params"]["max_epochs"] == 2
    assert sent["params"]["slicer"]["min_length_ms"] == 5000
    assert sent["params"]["target_lufs"] == -20

    job = wait_job_status(stack, "alice", job_id, 120)
    # a 3-s song is too short to slice (5 s minimum): the failure is shown in plain words
    assert job["status"] == "failed" and job["stage"] == "slice", job
    page.wait_for_selector("#train-job section.job[data-status=failed]")
    assert_plain_error_shown(page, "#train-job", job)
    assert "at least 5 s" in page.locator("#train-job").inner_text()
    assert page.locator("#train-job .stages li.failed").count() == 1
    s.shot("06-training")

    # Retry runs the same job again from the failed stage (here it fails the same way: the
    # song is still too short); the view follows it live again
    page.locator("#train-job").get_by_role("button", name="Retry job").click()
    deadline = time.monotonic() + 120
    retried = job
    while retried["finished_at"] == job["finished_at"] or retried["status"] not in TERMINAL:
        assert time.monotonic() < deadline, f"the retried job did not finish: {retried}"
        time.sleep(0.25)
        retried = api_job(stack, "alice", job_id)
    assert retried["status"] == "failed" and retried["stage"] == "slice", retried
    assert retried["progress"] >= 2 / len(retried["stages"])  # ingest and separate kept
    page.wait_for_selector(f'#train-job section.job[data-job-id="{job_id}"][data-status=failed]')
    assert "at least 5 s" in page.locator("#train-job").inner_text()


def test_jobs_page_lists_jobs_and_cancels(open_session, stack, tmp_path):
    voice = api_voice(stack, "alice", "Queue")
    bad = api_upload(stack, "alice", voice["id"], silent(tmp_path / "hush.wav", seconds=2))
    assert bad["job"]["status"] == "failed"
    s = open_session("alice")
    page = s.page
    with no_worker(stack):
        queued = api_upload(
            stack, "alice", voice["id"], song(tmp_path / "later.wav", seconds=2), wait=False
        )["job"]
        page.get_by_role("link", name="Jobs").click()
        page.get_by_role("heading", name="Jobs").wait_for()
        row = page.locator(f'tr[data-job-id="{queued["id"]}"]')
        row.wait_for()
        assert row.get_attribute("data-status") == "queued"
        assert "Voice Queue" in row.inner_text()
        failed = page.locator(f'tr[data-job-id="{bad["job"]["id"]}"]')
        assert "silent" in failed.inner_text() and failed.get_attribute("data-status") == "failed"
        assert_controls_labelled(page)
        s.shot("07-jobs")
        row.get_by_role("button", name="Cancel").click()
        page.wait_for_selector(f'tr[data-job-id="{queued["id"]}"][data-status="cancelled"]')
        assert api_job(stack, "alice", queued["id"])["status"] == "cancelled"
    page.get_by_label("Show").select_option("cancelled")
    page.wait_for_selector(f'#jobs[aria-busy=false] tr[data-job-id="{queued["id"]}"]')
    assert page.locator("#jobs tbody tr[data-status]:not([data-status=cancelled])").count() == 0
    s.shot("08-jobs-cancelled")
    # a worker, back, skips the cancelled job: a job queued after it runs, and it stays
    # cancelled
    later = api_upload(stack, "alice", voice["id"], song(tmp_path / "after.wav", seconds=2))
    assert later["job"]["status"] == "succeeded", later["job"]
    assert api_job(stack, "alice", queued["id"])["status"] == "cancelled"
    # Retry queues the same job again; it runs and leaves the cancelled list
    page.locator(f'tr[data-job-id="{queued["id"]}"]').get_by_role("button", name="Retry").click()
    page.wait_for_selector(
        f'#jobs[aria-busy=false] tr[data-job-id="{queued["id"]}"]', state="detached"
    )
    job = wait_job_status(stack, "alice", queued["id"], 60)
    assert job["status"] == "succeeded", job


def test_conversion_upload_shows_live_job(open_session, stack, tmp_path):
    voice = api_voice(stack, "alice", "Target")
    s = open_session("alice")
    page = s.page
    s.goto(f"#/convert?voice={voice['id']}")
    page.get_by_role("heading", name="Convert a song").wait_for()
    assert page.get_by_label("Voice", exact=True).input_value() == voice["id"]
    s.drop_files(".dropzone", [song(tmp_path / "source.wav", seconds=3, f0=196)])
    assert "source.wav" in page.locator("#chosen-files").inner_text()
    page.get_by_label("Automatic: fit the song").check()
    assert page.get_by_label("Transpose (semitones)").is_disabled()
    page.get_by_label("Vocal level").fill("3")
    page.get_by_label("Reverb on the vocals").fill("0.25")
    page.get_by_label("Output format").select_option("flac")
    assert_controls_labelled(page)
    s.shot("09-convert-form")
    page.get_by_role("button", name="Upload and convert").click()

    page.get_by_role("heading", name="Conversion of source.wav").wait_for()
    conv_id = page.url.rsplit("/", 1)[-1]
    with stack.client("alice") as c:
        conv = c.get(f"/api/v1/conversions/{conv_id}").json()
    assert conv["voice_id"] == voice["id"]
    opts = conv["options"]
    assert opts["transpose"] == "auto" and opts["vocal_gain_db"] == 3
    assert opts["reverb"] == 0.25 and opts["output_format"] == "flac"

    view = page.locator("#conversion-job section.job")
    view.wait_for()
    job_id = conv["job"]["id"]
    assert view.get_attribute("data-job-id") == job_id
    job = wait_job_status(stack, "alice", job_id, 120)
    # the voice was never trained: the job says so in plain words
    assert job["status"] == "failed" and "has not been trained yet" in job["error"], job
    page.wait_for_selector("#conversion-job section.job[data-status=failed]")
    assert_plain_error_shown(page, "#conversion-job", job)
    # the stage pills show where it stopped
    assert page.locator("#conversion-job .stages li").count() == len(job["stages"])
    s.shot("10-conversion")

    page.get_by_role("link", name="← All conversions").click()
    page.locator(f'#conversion-list tr[data-conversion-id="{conv_id}"]').wait_for()


def test_users_see_only_their_own_things(open_session, stack, tmp_path):
    voice = api_voice(stack, "alice", "Alice only")
    up = api_upload(stack, "alice", voice["id"], song(tmp_path / "mine.wav", seconds=2))
    track_id = up["tracks"][0]["id"]
    s = open_session("bob")
    page = s.page
    assert page.locator("#user-name").inner_text() == "bob"
    assert page.locator("#voice-list").inner_text().startswith("No voices yet")
    page.get_by_role("link", name="Jobs").click()
    page.locator("#jobs .empty").wait_for()
    page.get_by_role("link", name="Convert").click()
    page.locator("p#conversion-list").wait_for()
    assert (
        page.get_by_label("Voice", exact=True).locator("option").count() == 1
    )  # only the placeholder

    s.goto(f"#/voices/{voice['id']}")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Voice not found" in alert.inner_text()
    assert "Alice only" not in page.content()
    status = page.evaluate(
        "async (id) => (await fetch(`/api/v1/tracks/${id}/audio?variant=decoded`)).status",
        track_id,
    )
    assert status == 404
    s.shot("10-bob-isolated")


ATTACK_PAGE = """<!doctype html><meta charset="utf-8"><title>Free covers</title>
<script>
async function attack(api, voiceId, wavB64) {
  const wav = Uint8Array.from(atob(wavB64), (c) => c.charCodeAt(0));
  const form = new FormData();
  form.append("files", new Blob([wav], { type: "audio/wav" }), "planted.wav");
  form.append("vocals_only", "true");
  const opts = { method: "POST", credentials: "include", mode: "no-cors" };
  await fetch(`${api}/api/v1/voices/${voiceId}/tracks`, { ...opts, body: form });
  await fetch(`${api}/api/v1/voices/${voiceId}/train`, {
    ...opts, headers: { "Content-Type": "text/plain" }, body: "{}",
  });
}
</script>"""


def test_a_page_on_another_port_cannot_act_for_the_user(open_session, stack, tmp_path):
    """Same-site CSRF (issue 13): a page served from another port of the same host is the
    same *site*, so Chromium sends the SameSite=Strict cookie with its requests; the server
    must refuse them because they do not come from its own origin. (A DELETE or a JSON body
    would need a CORS preflight, which the server never grants: simple requests are the
    threat.)"""
    import base64
    import http.server
    import threading

    voice = api_voice(stack, "alice", "Target of CSRF")
    api_upload(stack, "alice", voice["id"], song(tmp_path / "real.wav", seconds=2))
    with stack.client("alice") as c:
        before_tracks = c.get(f"/api/v1/voices/{voice['id']}").json()["tracks"]
        before_jobs = {j["id"] for j in c.get("/api/v1/jobs", params={"limit": 200}).json()}
    site = tmp_path / "attacker"
    site.mkdir()
    (site / "index.html").write_text(ATTACK_PAGE)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(site), **kw)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        s = open_session("alice")
        page = s.page
        statuses: dict[str, int] = {}
        page.on(
            "response",
            lambda r: (
                statuses.__setitem__(f"{r.request.method} {r.url.split('/api/v1/')[-1]}", r.status)
                if "/api/v1/voices/" in r.url
                else None
            ),
        )
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
        wav = base64.b64encode(song(tmp_path / "planted.wav", seconds=2).read_bytes()).decode()
        page.evaluate("([api, id, wav]) => attack(api, id, wav)", [stack.url, voice["id"], wav])
        page.wait_for_timeout(300)  # the last response event
        vid = voice["id"]
        assert statuses == {
            f"POST voices/{vid}/tracks": 403,
            f"POST voices/{vid}/train": 403,
        }, statuses
    finally:
        httpd.shutdown()
    with stack.client("alice") as c:
        after = c.get(f"/api/v1/voices/{voice['id']}")
        assert after.status_code == 200 and after.json()["tracks"] == before_tracks
        jobs = c.get("/api/v1/jobs", params={"limit": 200}).json()
        assert {j["id"] for j in jobs} == before_jobs  # no training was started
    # the same kind of request from the studio's own page goes through (no blanket ban)
    s.goto("#/voices")
    status = page.evaluate(
        """async (id) => (await fetch(`/api/v1/voices/${id}`, {method: "PATCH",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({name: "Renamed by its owner"})})).status""",
        voice["id"],
    )
    assert status == 200


@pytest.mark.timeout(1800)
def test_full_journey_train_convert_listen_download(open_session, stack, tmp_path):
    """Upload → train (tiny config, tiny official-format encoders) → convert → play →
    download → re-mix, all through the pages."""
    s = open_session("alice")
    page = s.page
    voice_id = create_voice_in_ui(page, "Journey")
    refs = []
    for i, f0 in enumerate((196.0, 247.0, 294.0)):
        y, _ = synth.phrases([2.5, 3.0, 2.0], [0.4, 0.5, 0.6, 0.4], f0=f0)
        refs.append(synth.write(tmp_path / f"ref{i}.wav", y.astype(np.float32)))
    page.get_by_label("These files are vocals only").check()
    s.drop_files(".dropzone", refs)
    page.wait_for_function(
        "() => document.querySelectorAll('#tracks tr[data-status=ready]').length == 3",
        timeout=120_000,
    )

    page.get_by_label("Model size").select_option("tiny")
    page.get_by_label("Pitch (F0) method").select_option("dio")
    page.get_by_text("More training options").click()
    page.get_by_label("Stop after steps").fill("30")
    page.get_by_label("Whisper PPG model").fill(stack.assets["ppg_model"])
    page.get_by_label("HuBERT-soft model").fill(stack.assets["vec_model"])
    page.get_by_role("button", name="Start training").click()
    view = page.locator("#train-job section.job")
    view.wait_for()
    job_id = view.get_attribute("data-job-id")
    seen: set[float] = set()
    job = wait_job_status(stack, "alice", job_id, 1500, page=page, samples=seen)
    page.wait_for_selector(f"#train-job section.job[data-status={job['status']}]")
    s.shot("11-journey-training")
    assert job["status"] == "succeeded", job["error"]
    assert len(seen) >= 2, f"the progress bar did not move live: {seen}"
    page.wait_for_selector("#train-job section.job[data-status=succeeded]")
    curve = (job["metrics"] or {}).get("curve") or []
    assert curve, "training finished without a loss curve"
    chart = page.locator("#loss-chart")
    assert chart.is_visible()
    page.wait_for_function(
        "(n) => document.querySelector('#loss-chart').dataset.points == String(n)", arg=len(curve)
    )
    page.locator("#coverage").wait_for()
    assert page.locator("#pitch-histogram").is_visible()
    with page.expect_download() as dl:
        page.locator("#outputs a[data-kind=spk]").click()
    spk = dl.value
    assert spk.suggested_filename.endswith(".spk.npy")
    assert Path(spk.path()).stat().st_size > 0
    s.shot("12-journey-voice")

    s.goto(f"#/convert?voice={voice_id}")
    page.get_by_role("heading", name="Convert a song").wait_for()
    y, _ = synth.phrases([3.0, 2.0], [0.5, 0.5, 0.5], f0=220.0)
    s.drop_files(".dropzone", [synth.write(tmp_path / "cover.wav", y.astype(np.float32))])
    page.get_by_label("Vocal level").fill("2")
    page.get_by_role("button", name="Upload and convert").click()
    page.get_by_role("heading", name="Conversion of cover.wav").wait_for()
    conv_id = page.url.rsplit("/", 1)[-1]
    with stack.client("alice") as c:
        conv_job = c.get(f"/api/v1/conversions/{conv_id}").json()["job"]
    seen = set()
    job = wait_job_status(stack, "alice", conv_job["id"], 900, page=page, samples=seen)
    page.wait_for_selector(f"#conversion-job section.job[data-status={job['status']}]")
    assert job["status"] == "succeeded", job["error"]
    page.locator("#results").wait_for()
    state = play_muted(page, page.locator("#play-mix"))
    assert state["err"] is None and state["d"] > 4.0
    page.wait_for_selector("#results canvas.wave[data-state=ready]")
    with page.expect_download() as dl:
        page.locator("#downloads a[data-kind=mix]").first.click()
    mix = dl.value
    assert Path(mix.path()).stat().st_size > 1000
    page.locator("#quality").wait_for()
    s.shot("13-journey-conversion")

    remix = page.locator("#remix")
    assert remix.is_visible()
    n_mixes = page.locator("#downloads a[data-kind=mix]").count()
    remix.get_by_label("Vocal level").fill("-3")
    remix.get_by_role("button", name="Mix again").click()
    page.wait_for_function(
        "(n) => document.querySelectorAll('#downloads a[data-kind=mix]').length > n",
        arg=n_mixes,
        timeout=120_000,
    )
    s.shot("16-journey-remixed")


# --- pictures and results, from the data the coming stages will store -----------------------


def _curve(n: int) -> list[dict]:
    return [
        {
            "step": 10 * i,
            "epoch": i // 8,
            "mel": 4.0 * np.exp(-i / 12) + 1.0,
            "total": 9.0 * np.exp(-i / 10) + 3.0,
            "val_mel": (4.2 * np.exp(-i / 12) + 1.1) if i % 8 == 0 else None,
        }
        for i in range(n)
    ]


def _artifact(art_id: str, kind: str, filename: str, content_type: str, **owner) -> dict:
    return {
        "id": art_id,
        "kind": kind,
        "filename": filename,
        "content_type": content_type,
        "size_bytes": 123_456,
        "sha256": "0" * 64,
        "stage": None,
        "job_id": None,
        "track_id": None,
        "voice_id": None,
        "conversion_id": None,
        "meta": None,
        "created_at": "2026-11-25T12:00:00Z",
        "download_url": f"/api/v1/artifacts/{art_id}/download",
        **owner,
    }


def test_results_pictures_and_downloads_render(open_session, stack, tmp_path):
    """The finished-voice and finished-conversion screens, fed with the report, metrics and
    artifacts the training/conversion stages store (the API responses are extended in the
    browser; the audio is real WAV data served for the artifact URLs)."""
    import json

    voice = api_voice(stack, "alice", "Finished")
    ref = song(tmp_path / "ref.wav", seconds=3)
    ref_id = api_upload(stack, "alice", voice["id"], ref)["tracks"][0]["id"]
    # downloads go to a real file (Chromium cancels downloads answered by an intercepted route)
    real_file = f"/api/v1/tracks/{ref_id}/audio?variant=original"
    with stack.client("alice") as c:
        r = c.post(
            "/api/v1/conversions",
            data={"voice_id": voice["id"], "options": json.dumps({"output_format": "wav16"})},
            files=[("files", ("cover.wav", song(tmp_path / "c.wav", 4).read_bytes(), "audio/wav"))],
        )
        assert r.status_code == 201, r.text
        conv = r.json()[0]
    wav = song(tmp_path / "result.wav", seconds=4, f0=300).read_bytes()
    curve = _curve(40)
    report = {
        "total_seconds": 1260.0,
        "voiced_seconds": 1011.5,
        "slices": 142,
        "range": {
            "low": "C3",
            "high": "A4",
            "low_hz": 130.8,
            "high_hz": 440.0,
            "p5_hz": 150.0,
            "p95_hz": 400.0,
        },
        "histogram": [
            {"note": f"n{m}", "midi": m, "seconds": float(60 * np.exp(-(((m - 58) / 5) ** 2)))}
            for m in range(46, 72)
        ],
        "loudness_lufs": -18.2,
        "warnings": ["Few notes above G4: high notes may sound strained."],
    }
    v_arts = [
        {
            **_artifact("a-spk", "spk", "Finished.spk.npy", "application/octet-stream"),
            "download_url": real_file,
        },
        _artifact("a-pkg", "voice_package", "Finished.zip", "application/zip"),
        _artifact("a-prev", "preview", "preview-1.wav", "audio/wav"),
    ]
    c_arts = [
        {**_artifact("a-mix", "mix", "cover-Finished.wav", "audio/wav"), "download_url": real_file},
        _artifact("a-voc", "converted_vocals", "cover-vocals.wav", "audio/wav"),
        _artifact("a-inst", "instrumental", "cover-instrumental.wav", "audio/wav"),
    ]
    conv_report = {  # the shape the report stage stores
        "quality": {
            "similarity_to_target": 0.78,
            "similarity_to_source": 0.41,
            "pitch": {"raw_pitch_accuracy": 0.93, "octave_errors": 0.01, "voicing_recall": 0.97},
        },
        "verdicts": ["The result is closer to the target voice than to the source singer."],
        "transpose": {"semitones": -2, "mode": "auto"},
        "coverage": {
            "outside_share": 0.07,
            "message": "7 % of the song's notes lie outside the voice's range",
            "source_range": {"low_hz": 146.8, "high_hz": 392.0},
        },
        "mix": {"mix_lufs": -14.0, "true_peak_dbtp": -1.0},
    }

    def extend(route, change):
        res = route.fetch()
        body = res.json()
        change(body)
        route.fulfill(response=res, json=body)

    def voice_route(route):
        def change(v):
            v.update(status="ready", report=report, artifacts=v_arts)

        extend(route, change)

    def jobs_route(route):
        def change(jobs):
            for j in jobs:
                if j["kind"] == "ingest":
                    j.update(
                        kind="voice", stages=["ingest", "separate", "slice", "preprocess", "train"]
                    )
                    j.update(stage="train", status="succeeded", progress=1.0)
                    j["metrics"] = {
                        "curve": curve,
                        "train": {"step": 390, "epoch": 4, "starts_from": "from scratch"},
                    }
                    break

        extend(route, change)

    def conv_route(route):
        def change(cv):
            cv.update(report=conv_report, artifacts=c_arts)
            cv["job"].update(status="succeeded", progress=1.0, stage="report", error=None)

        extend(route, change)

    def artifact_route(route):
        route.fulfill(
            status=200,
            body=wav,
            headers={
                "Content-Type": "audio/wav",
                "Content-Disposition": 'attachment; filename="result.wav"',
            },
        )

    s = open_session("alice")
    page = s.page
    page.route(f"**/api/v1/voices/{voice['id']}", voice_route)
    page.route(f"**/api/v1/jobs?voice_id={voice['id']}*", jobs_route)
    page.route(f"**/api/v1/conversions/{conv['id']}", conv_route)
    page.route("**/api/v1/artifacts/a-*/download*", artifact_route)

    s.goto(f"#/voices/{voice['id']}")
    page.get_by_role("heading", name="Finished").wait_for()
    page.wait_for_function(
        "(n) => document.querySelector('#loss-chart')?.dataset.points == String(n)",
        arg=len(curve),
    )
    assert "from scratch" in page.locator("#train-info").inner_text()
    assert page.locator("#coverage").is_visible()
    assert "C3 – A4" in page.locator("#coverage").inner_text()
    assert "high notes may sound strained" in page.locator("#coverage").inner_text()
    # the pictures have ink on them (not blank canvases)
    for sel in ("#loss-chart", "#pitch-histogram"):
        page.wait_for_function(
            """(sel) => { const c = document.querySelector(sel); const d = c.getContext('2d')
                 .getImageData(0, 0, c.width, c.height).data; let n = 0;
                 for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                 return n > c.width * 4; }""",
            arg=sel,
        )
    play_muted(page, page.locator("#outputs audio").first, 0.1)
    with page.expect_download() as dl:
        page.locator("#outputs a[data-kind=spk]").click()
    assert Path(dl.value.path()).read_bytes() == ref.read_bytes()
    s.shot("14-voice-finished")

    s.goto(f"#/conversions/{conv['id']}")
    page.locator("#results").wait_for()
    for pid in ("play-mix", "play-vocals", "play-instrumental", "play-original"):
        page.wait_for_selector(f'[data-player="{pid}"] canvas.wave[data-state=ready]')
    state = play_muted(page, page.locator("#play-mix"))
    assert state["d"] == pytest.approx(3.0, abs=0.05)  # the mix's URL is the 3-s reference
    ab = page.locator("#ab")
    ab.get_by_role("button", name="Original song").click()
    assert ab.get_by_role("button", name="Original song").get_attribute("aria-pressed") == "true"
    assert ab.get_by_role("button", name="Converted mix").get_attribute("aria-pressed") == "false"
    quality = page.locator("#quality").inner_text()
    assert "closer to the target voice" in quality and "0.78" in quality
    assert "93 %" in quality and "-2 (auto)" in quality and "7 % of the song" in quality
    assert page.locator("#quality canvas.histogram").count() == 1
    with page.expect_download() as dl:
        page.locator("#downloads a[data-kind=mix]").click()
    assert Path(dl.value.path()).read_bytes() == ref.read_bytes()
    assert_controls_labelled(page)
    s.shot("15-conversion-finished")

    # re-mix calls the API; until the endpoint exists the page says so in words
    page.get_by_label("Vocal level").fill("-3")
    page.get_by_role("button", name="Mix again").click()
    msg = page.locator("#remix [role=alert], #conversion-job section.job[data-kind=remix]")
    msg.first.wait_for()
    if page.locator("#remix [role=alert]").count():
        text = page.locator("#remix [role=alert]").inner_text()
        assert "Re-mixing is not available" in text or "Could not re-mix" in text

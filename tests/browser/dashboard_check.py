#!/usr/bin/python3
"""Loads the maskwatch dashboard in a real headless Chromium (Selenium + chromedriver from
Debian), waits until the page's scripts have filled in the camera tiles, checks what a user
would see, and saves a screenshot. Used by tests/test_serve.cpp; prints one JSON line.

usage: dashboard_check.py [--clip] URL SCREENSHOT.png [WIDTH HEIGHT [FLEET_SITES]]
FLEET_SITES: also wait until the fleet table lists at least this many sites.
--clip: also press the newest alert's clip button and wait until the clip plays for a second;
        the screenshot then shows it (result: clip).
"""
import json
import time
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def play_clip(driver, wait):
    """Presses the newest alert's clip button; what the video element reports once it played."""
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "button.clip"))
    button = driver.find_elements(By.CSS_SELECTOR, "button.clip")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    wait.until(lambda d: d.execute_script(
        "const v = document.querySelector('video.clip'); return (v && v.currentTime > 1) || "
        "!!document.querySelector('.clip-note')"))
    driver.execute_script("const v = document.querySelector('video.clip'); if (v) { v.pause(); "
                          "v.scrollIntoView({block: 'center'}); }")
    return driver.execute_script("""
      const v = document.querySelector('video.clip'), note = document.querySelector('.clip-note');
      return v ? {played_s: v.currentTime, width: v.videoWidth, height: v.videoHeight, duration: v.duration,
                  src: v.currentSrc} : {error: note.textContent};""")


def main():
    args = sys.argv[1:]
    clip = "--clip" in args
    if clip:
        args.remove("--clip")
    sys.argv = [sys.argv[0]] + args
    url, shot = sys.argv[1], sys.argv[2]
    width, height = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (1280, 900)
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.set_page_load_timeout(20)
        driver.get(url)
        wait = WebDriverWait(driver, 20)
        # Tiles are created from /api/version, the badge from /api/stats, frames from latest.jpg.
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "section[data-camera] .badge.online"))
        # The widths as first seen all loaded: the page swaps each frame ~8 times a second, and
        # a frame still decoding reads 0 (read again below, that raced and failed once in CI).
        frame_widths = wait.until(lambda d: d.execute_script(
            "const w = [...document.querySelectorAll('img.view')].map(i => i.naturalWidth);"
            "return w.every(x => x > 0) ? {w: w} : null"))["w"]
        if len(sys.argv) > 5:
            want = int(sys.argv[5])
            wait.until(lambda d: d.execute_script(
                "return new Set([...document.querySelectorAll('#fleet tr[data-site]')].map(r => r.dataset.site)).size")
                >= want)
        result = driver.execute_script("""
          const tiles = [...document.querySelectorAll('section[data-camera]')];
          return {
            cameras: tiles.map(t => t.dataset.camera),
            status: tiles.map(t => t.querySelector('.badge').textContent),
            faces_text: tiles.map(t => t.querySelector('.numbers').textContent),
            meta: document.getElementById('meta').textContent,
            page_overflows: document.documentElement.scrollWidth > window.innerWidth + 1,
            // Requests that never end hold one of the browser's 6 connections to the server each.
            endless: performance.getEntriesByType('resource').map(e => e.name)
                       .filter(n => n.includes('stream.mjpeg')).length,
            frames_asked: performance.getEntriesByType('resource').map(e => e.name)
                       .filter(n => n.includes('latest.jpg')).length,
            fleet: [...document.querySelectorAll('#fleet tr[data-site]')].map(r => ({
              site: r.dataset.site, text: r.textContent})),
          };""")
        # What the server counts as open streams while the page is open (an event stream per
        # tab took the browser's connections as MJPEG did): the page should hold none, once its
        # start-up (which opened that stream last) is well over.
        time.sleep(3)
        result["frame_width"] = frame_widths
        result["server_streams"] = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/api/stats').then(r => r.json()).then(s => done(s.http.streams)).catch(() => done(-1));")
        if clip:
            result["clip"] = play_clip(driver, wait)
        driver.save_screenshot(shot)
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        result["console_errors"] = [e.get("message", "") for e in errors]
        print(json.dumps(result))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()

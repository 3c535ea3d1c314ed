"""Open an HTML page in headless Chromium from file:// with the network disabled.

:func:`inspect_page` copies the page, puts a probe script first in its ``<head>`` (it records
every script error, ``console.error`` call and Content-Security-Policy violation, i.e. any
attempt to load something that is not inline), and, once the page has loaded: lists the
section ids, the position, height and text of every element with an id (``rects``), the figure
captions of every section, checks every ``<img>`` decoded with a non-zero size, clicks a column header of one
sortable table and records the column before and after.  Chromium dumps the DOM after the
load; the probe's JSON is read back from it.  :func:`screenshot` takes a PNG of the first screen.

Only Chromium is needed (Debian's ``chromium`` package); no websocket or driver.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> Optional[str]:
    env = os.environ.get("NEUROMFA_CHROMIUM")
    if env:
        return env
    for c in CANDIDATES:
        p = shutil.which(c)
        if p:
            return p
    return None


PROBE = r"""
<script>
(function(){
 var R={errors:[],console:[],csp:[]};
 window.__probe=R;
 window.addEventListener('error',function(e){R.errors.push(String(e.message||e.type)+' @'+(e.filename||'')+':'+(e.lineno||''));},true);
 document.addEventListener('securitypolicyviolation',function(e){R.csp.push(e.violatedDirective+' '+e.blockedURI);});
 var ce=console.error;console.error=function(){R.console.push(Array.prototype.join.call(arguments,' '));return ce.apply(console,arguments);};
 window.addEventListener('load',function(){
  try{
   R.title=document.title;
   R.sections=Array.prototype.map.call(document.querySelectorAll('section[id]'),function(s){return s.id;});
   R.ids=Array.prototype.map.call(document.querySelectorAll('[id]'),function(s){return s.id;});
   R.rects={};Array.prototype.forEach.call(document.querySelectorAll('[id]'),function(e){
     var b=e.getBoundingClientRect();R.rects[e.id]=[b.top,b.height,e.innerText.slice(0,3000)];});
   R.captions={};Array.prototype.forEach.call(document.querySelectorAll('section[id]'),function(s){
     R.captions[s.id]=Array.prototype.map.call(s.querySelectorAll('figcaption'),function(c){return c.innerText;});});
   R.images=Array.prototype.map.call(document.querySelectorAll('img'),function(i){
     return {alt:i.alt,complete:i.complete,w:i.naturalWidth,h:i.naturalHeight};});
   R.svgs=Array.prototype.map.call(document.querySelectorAll('svg'),function(g){
     var b=g.getBoundingClientRect();return {label:g.getAttribute('aria-label'),w:b.width,h:b.height,
     bars:g.querySelectorAll('rect').length};});
   R.text=document.body.innerText.slice(0,20000);
   var tid=document.documentElement.getAttribute('data-sort-table');
   var t=tid?document.getElementById(tid):document.querySelector('table.sortable');
   if(t){
    var col=parseInt(document.documentElement.getAttribute('data-sort-col')||'0',10);
    if(t.tagName!=='TABLE'){t=t.querySelector('table');}
    var th=t.tHead.rows[0].cells[col];
    function column(){return Array.prototype.map.call(t.tBodies[0].rows,function(r){return r.cells[col].textContent;});}
    R.sort={table:t.id,column:th.textContent,before:column()};
    th.click();R.sort.asc=column();
    th.click();R.sort.desc=column();
   }
  }catch(err){R.errors.push('probe: '+err);}
  var pre=document.createElement('pre');pre.id='__probe';pre.textContent=JSON.stringify(R);
  document.body.appendChild(pre);
 });
})();
</script>
"""

FLAGS = ["--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-background-networking", "--disable-sync", "--mute-audio",
         "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND"]


def _run(args: list, profile: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no chromium")
    return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=timeout)


def inspect_page(page: Path, work: Path, *, sort_table: Optional[str] = None, sort_col: int = 0) -> dict:
    """The probe's findings for ``page`` (see the module docstring), plus Chromium's stderr."""
    work.mkdir(parents=True, exist_ok=True)
    text = Path(page).read_text()
    attrs = ""
    if sort_table:
        attrs = f' data-sort-table="{sort_table}" data-sort-col="{sort_col}"'
    text = text.replace("<html lang=\"en\">", f"<html lang=\"en\"{attrs}>", 1)
    i = text.index("<head>") + len("<head>")
    probed = work / ("probed-" + Path(page).name)
    probed.write_text(text[:i] + PROBE + text[i:])
    cp = _run(["--virtual-time-budget=5000", "--dump-dom", probed.resolve().as_uri()], work / "profile")
    m = re.search(r'<pre id="__probe">(.*?)</pre>', cp.stdout, re.S)
    if m is None:
        raise AssertionError(f"the probe did not report (chromium exit {cp.returncode}): {cp.stderr[-2000:]}")
    import html as _html
    out = json.loads(_html.unescape(m.group(1)))
    out["stderr"] = cp.stderr
    return out


def console_errors(stderr: str) -> list:
    """Lines of Chromium's log that report a page-side error (not Chromium's own dbus noise)."""
    return [ln for ln in stderr.splitlines()
            if "CONSOLE" in ln and ("Uncaught" in ln or "Error" in ln or "Refused" in ln)]


def screenshot(page: Path, png: Path, work: Path, size=(1280, 900)) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    cp = _run(["--hide-scrollbars", f"--window-size={size[0]},{size[1]}", f"--screenshot={png}",
               Path(page).resolve().as_uri()], work / "profile-shot")
    if not png.is_file():
        raise AssertionError(f"no screenshot (chromium exit {cp.returncode}): {cp.stderr[-2000:]}")
    return png


def blank_fraction(png: Path) -> float:
    """Fraction of near-white pixels of a PNG (1.0 = blank page)."""
    import matplotlib.image as mpimg
    import numpy as np
    a = mpimg.imread(png)[..., :3]
    if a.dtype != np.float32 and a.max() > 1:
        a = a / 255.0
    return float(np.mean(np.all(a > 0.97, axis=-1)))

// The dashboard's live panel: the clicks of GET /api/v1/live (Server-Sent Events, read with the
// signed-in session), newest first, the last MAX_ROWS of them. Rows are built with textContent:
// nothing the feed says is read as HTML.
(function () {
  "use strict";

  var MAX_ROWS = 20;
  var panel = document.querySelector("[data-live-feed]");
  if (!panel) {
    return;
  }
  var rows = panel.querySelector("[data-live-rows]");
  var status = panel.querySelector("[data-live-status]");
  if (!window.EventSource) {
    status.textContent = "This browser cannot show live clicks.";
    return;
  }

  function say(text) {
    status.textContent = text;
  }

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) {
      td.className = className;
    }
    return td;
  }

  function row(click) {
    var tr = document.createElement("tr");
    var at = new Date(click.at);
    var kind = click.scan ? "scan" : "click";
    if (click.bot) {
      kind += " · bot";
    } else if (click.test) {
      kind += " · proof";
    }
    tr.appendChild(cell(at.toLocaleTimeString(), "nowrap muted"));
    tr.appendChild(cell(click.touchpoint, "strong"));
    tr.appendChild(cell(click.stage));
    tr.appendChild(cell("/" + click.slug));
    tr.appendChild(cell(click.country || "–"));
    tr.appendChild(cell(click.device));
    tr.appendChild(cell(kind));
    tr.setAttribute("data-live-click", "");
    return tr;
  }

  function show(clicks) {
    var empty = rows.querySelector(".live-empty");
    if (empty) {
      empty.remove();
    }
    // The feed sends each batch oldest first: the newest ends on top.
    for (var i = 0; i < clicks.length; i++) {
      rows.insertBefore(row(clicks[i]), rows.firstChild);
    }
    while (rows.children.length > MAX_ROWS) {
      rows.removeChild(rows.lastChild);
    }
  }

  var source = new EventSource(panel.getAttribute("data-live-feed"));
  say("Connecting…");
  source.addEventListener("open", function () {
    say("Connected: new clicks appear here.");
  });
  source.addEventListener("clicks", function (event) {
    show(JSON.parse(event.data));
  });
  // The stream ends after `dropped` (this page fell behind); EventSource comes back by itself.
  source.addEventListener("dropped", function () {
    say("Fell behind; reconnecting…");
  });
  source.addEventListener("error", function () {
    say(source.readyState === EventSource.CLOSED ? "Live updates stopped: reload the page." : "Reconnecting…");
  });
})();

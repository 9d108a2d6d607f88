-- GET /: the chat page. Its script uses the PiCloud browser client served by the server.
local page = [[
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PiCloud chat</title>
<link rel="icon" href="data:,">
<style>
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
  * { box-sizing: border-box; }
  body { margin: 0; display: grid; grid-template-rows: auto 1fr auto; height: 100vh; height: 100dvh; }
  header { padding: .5rem 1rem; border-bottom: 1px solid #8884; display: flex; justify-content: space-between; align-items: center; gap: 1rem; }
  h1 { font-size: 1.25rem; margin: 0; }
  #status { font-size: .85rem; padding: .15rem .6rem; border-radius: 1rem; background: #8882; white-space: nowrap; }
  #status[data-state="open"] { background: #2a7d2a33; }
  #messages { list-style: none; margin: 0; padding: 1rem; overflow-y: auto; overflow-wrap: anywhere; }
  #messages li { margin: .35rem 0; }
  #messages .author { font-weight: 600; margin-right: .4rem; }
  form { display: grid; grid-template-columns: minmax(6rem, 12rem) minmax(0, 1fr) auto; gap: .5rem; align-items: end; padding: .75rem 1rem; border-top: 1px solid #8884; }
  label { display: flex; flex-direction: column; gap: .2rem; font-size: .85rem; min-width: 0; }
  input, button { font: inherit; padding: .45rem .6rem; min-width: 0; width: 100%; }
  button { width: auto; }
  @media (max-width: 480px) {
    form { grid-template-columns: minmax(0, 1fr) auto; }
    form label:first-child { grid-column: 1 / -1; }
  }
</style>
</head>
<body>
<header><h1>Chat</h1><span id="status" role="status" aria-live="polite">connecting…</span></header>
<ul id="messages" aria-live="polite" aria-label="Messages"></ul>
<form id="send">
  <label>Name <input name="author" required maxlength="40" autocomplete="nickname"></label>
  <label>Message <input name="text" required maxlength="2000" autocomplete="off"></label>
  <button type="submit">Send</button>
</form>
<script type="module">
  import { createClient } from "/client/picloud.js";

  const client = createClient({ url: location.origin, app: "chat" });
  const list = document.getElementById("messages");
  const status = document.getElementById("status");
  const form = document.getElementById("send");
  const seen = new Set();
  form.author.value = localStorage.getItem("chat-author") || "";

  // Messages stay in the order they were sent, whichever way they arrive (history or live).
  function show(message) {
    if (seen.has(message.id)) return;
    seen.add(message.id);
    const item = document.createElement("li");
    item.dataset.id = message.id;
    item.dataset.sentAt = message.sent_at;
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = message.author;
    item.append(author, document.createTextNode(message.text));
    const later = [...list.children].find((other) => Number(other.dataset.sentAt) > message.sent_at);
    list.insertBefore(item, later ?? null);
    list.scrollTop = list.scrollHeight;
  }

  const loadHistory = () => client.endpoint("GET /messages")().then((page) => page.items.forEach(show));

  // Follow the room first, then load what was said before: nothing falls between the two.
  client.subscribe("room", {
    onOpen: () => { status.textContent = "live"; status.dataset.state = "open"; },
    onEvent: (event) => show(event.message),
    onGap: loadHistory,
    onError: (error) => { status.textContent = "reconnecting…"; status.dataset.state = "error"; console.warn(error); },
  });
  const post = client.endpoint("POST /messages");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    localStorage.setItem("chat-author", form.author.value);
    try {
      show(await post({ body: { author: form.author.value, text: form.text.value } }));
      form.text.value = "";
      form.text.focus();
    } catch (error) {
      alert(error.message);
    }
  });

  await loadHistory();

</script>
</body>
</html>
]]

return function()
  return { headers = { ["content-type"] = "text/html; charset=utf-8" }, body = page }
end

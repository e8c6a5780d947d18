// Dashboard pages and embedded cards: copy buttons for the "embed this card" lines, and
// the top-areas card, filled from the counts-by-area endpoint with the page's filters
// (its URL is in the card's `data-aggregate`, built by the server).

for (const button of document.querySelectorAll('button[data-copy]')) {
  button.addEventListener('click', async () => {
    const input = document.getElementById(button.dataset.copy);
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      button.textContent = 'Copied';
    } catch {
      // No clipboard permission (an insecure origin): the text is selected for Ctrl+C.
      button.textContent = 'Selected: press Ctrl+C';
    }
  });
}

const TOP_AREAS = 8;

for (const box of document.querySelectorAll('[data-aggregate]')) {
  const status = box.querySelector('.status');
  const list = box.querySelector('ol');
  fetch(box.dataset.aggregate, { headers: { accept: 'application/json' } })
    .then(async (r) => {
      if (r.status === 404) throw new Error('Counts by area are not available on this server yet.');
      if (!r.ok) throw new Error(`Counts by area failed (${r.status}).`);
      return r.json();
    })
    .then((doc) => {
      const areas = [...(doc.areas || [])].sort((a, b) => b.count - a.count).slice(0, TOP_AREAS);
      const max = Math.max(1, ...areas.map((a) => a.count));
      for (const a of areas) {
        const li = document.createElement('li');
        const name = document.createElement('span');
        name.className = 'bar-label';
        name.textContent = a.name ?? String(a.id);
        const meter = document.createElement('meter');
        meter.min = 0;
        meter.max = max;
        meter.value = a.count;
        meter.setAttribute('aria-hidden', 'true');
        const count = document.createElement('span');
        count.className = 'bar-count';
        count.dataset.count = a.count;
        count.textContent = a.count.toLocaleString('en');
        li.append(name, meter, count);
        list.append(li);
      }
      status.textContent = doc.outside ? `${doc.outside.toLocaleString('en')} outside every area.` : '';
    })
    .catch((e) => {
      status.textContent = e.message;
    });
}

// Context menu: "Check provenance" on a selection opens the result page with the text.
const MENU_ID = 'provenance-check';

chrome.runtime.onInstalled.addListener(() => {
  chrome.contextMenus.create({
    id: MENU_ID,
    title: 'Check provenance of "%s"',
    contexts: ['selection'],
  });
});

// What a click on the menu item does, given what Chromium passes with the click.
async function onMenuClick(info) {
  if (info.menuItemId !== MENU_ID || !info.selectionText) return;
  // Session storage, not the URL: the selection may be long and stays out of history.
  await chrome.storage.session.set({ pending: info.selectionText });
  await chrome.windows.create({ url: chrome.runtime.getURL('popup.html?from=menu'), type: 'popup', width: 520, height: 640 });
}

chrome.contextMenus.onClicked.addListener(onMenuClick);

// Headless Chromium draws no context menu to click, so the end-to-end test calls the listener
// itself (through the DevTools protocol) with the same `info` a click passes.
globalThis.onMenuClick = onMenuClick;

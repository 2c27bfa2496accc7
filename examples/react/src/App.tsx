import { type FormEvent, useEffect, useState } from "react";
import { LOBBY, MAX_TEXT } from "./events.js";
import { TetherProvider, useConnectionState, useEvent, usePresence, useSubscription, useTether } from "./tether.js";

/** The whole app: one provider, which connects once the user is logged in. */
export function App() {
  const [loggedIn, setLoggedIn] = useState<boolean | undefined>(undefined);
  return (
    <TetherProvider connect={loggedIn === true} fallback={<p>Loading…</p>}>
      <main>
        <h1>Tether in a React app</h1>
        <ConnectionBadge />
        {loggedIn === undefined ? (
          <SessionCheck onResult={setLoggedIn} />
        ) : loggedIn ? (
          <Rooms onLogout={() => setLoggedIn(false)} />
        ) : (
          <Login onLogin={() => setLoggedIn(true)} />
        )}
      </main>
    </TetherProvider>
  );
}

function ConnectionBadge() {
  const state = useConnectionState();
  return (
    <p>
      Connection:{" "}
      <output id="state" data-state={state}>
        {state}
      </output>
    </p>
  );
}

/** A session left from an earlier visit (the cookie) skips the login form. */
function SessionCheck({ onResult }: { onResult: (loggedIn: boolean) => void }) {
  const client = useTether();
  useEffect(() => {
    let current = true;
    client.session().then(
      () => current && onResult(true),
      () => current && onResult(false),
    );
    return () => {
      current = false;
    };
  }, [client, onResult]);
  return <p>Checking the session…</p>;
}

function Login({ onLogin }: { onLogin: () => void }) {
  const client = useTether();
  const [name, setName] = useState("");
  const [error, setError] = useState<string>();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    client.login({ name }).then(onLogin, (failed: Error) => setError(failed.message));
  };
  return (
    <form id="login" onSubmit={submit}>
      <label>
        Your name <input id="name" value={name} onChange={(e) => setName(e.target.value)} required />
      </label>
      <button type="submit">Log in</button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}

/** The room opens on demand, like a page the user navigates to: its subscription lives while it is shown. */
function Rooms({ onLogout }: { onLogout: () => void }) {
  const client = useTether();
  const [open, setOpen] = useState(false);
  return (
    <>
      <button id="toggle-lobby" type="button" onClick={() => setOpen(!open)}>
        {open ? "Leave the lobby" : "Enter the lobby"}
      </button>
      <button id="logout" type="button" onClick={() => client.logout().then(onLogout)}>
        Log out
      </button>
      {open && <Lobby />}
    </>
  );
}

function Lobby() {
  const client = useTether();
  const { state, events, history, error } = useSubscription(LOBBY, { history: 20, presence: { status: "here" } });
  const { members } = usePresence(LOBBY);
  // Every message counted once, by a listener of the whole client (removed on unmount).
  const [received, setReceived] = useState(0);
  useEvent("chat:message", () => setReceived((count) => count + 1));
  const [text, setText] = useState("");
  const send = (event: FormEvent) => {
    event.preventDefault();
    client.emitWithAck("chat:send", { text }).then(() => setText(""));
  };
  return (
    <section>
      <h2>
        Room {LOBBY}: <output id="room-state">{state}</output>
      </h2>
      {error && <p role="alert">{error.message}</p>}
      <h3>Here now</h3>
      <ul id="members">
        {members.map((member) => (
          <li key={member.userId}>
            {member.userId} {member.data ? `(${String(member.data.status)})` : ""}
          </li>
        ))}
      </ul>
      <h3>Earlier</h3>
      <ul id="history" data-loaded={history !== undefined}>
        {history?.map((event) => (
          <li key={event.offset}>{String((event.data as { text?: unknown }).text)}</li>
        ))}
      </ul>
      <h3>
        Live (<output id="received">{received}</output> received)
      </h3>
      <ul id="events">
        {events.map(({ payload }) => (
          <li key={payload.offset}>
            {payload.by}: {payload.text}
          </li>
        ))}
      </ul>
      <form id="say" onSubmit={send}>
        <input id="text" value={text} maxLength={MAX_TEXT} onChange={(e) => setText(e.target.value)} required />
        <button type="submit">Send</button>
      </form>
    </section>
  );
}

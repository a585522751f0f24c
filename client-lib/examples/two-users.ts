/**
 * Two users chat through a running platform.
 *
 *   npm start                                             # the server (repository root)
 *   npx tsx client-lib/examples/two-users.ts [httpUrl] [brokerUrl]
 *
 * Defaults: http://127.0.0.1:8080 and mqtt://127.0.0.1:1883. In an app, import from
 * '@mqtt-chat/client' instead of the source.
 */
import { ChatClient, HttpAuth, foldMessages } from '../src/index.ts';

const httpUrl = process.argv[2] ?? 'http://127.0.0.1:8080';
const brokerUrl = process.argv[3] ?? 'mqtt://127.0.0.1:1883';
const suffix = Math.random().toString(36).slice(2, 7);

async function main(): Promise<void> {
  const aliceAuth = await HttpAuth.register(httpUrl, `alice_${suffix}`, 'correct-horse-battery', 'laptop');
  const bobAuth = await HttpAuth.register(httpUrl, `bob_${suffix}`, 'correct-horse-battery', 'phone');

  const connect = (auth: HttpAuth): ChatClient =>
    new ChatClient({
      url: brokerUrl,
      user: auth.session.user,
      device: auth.session.device,
      getToken: auth.getToken,
      refreshToken: auth.refreshToken,
    });
  const alice = connect(aliceAuth);
  const bob = connect(bobAuth);
  bob.on('message', (m) => console.log(`bob got   #${m.seq} from ${m.from}: ${JSON.stringify(m.body)}`));
  alice.on('message', (m) => console.log(`alice got #${m.seq} from ${m.from}: ${JSON.stringify(m.body)}${m.own ? ' (own)' : ''}`));
  alice.on('receipt', (r) => console.log(`alice: ${r.user} ${r.status} up to #${r.seq}`));
  await Promise.all([alice.connect(), bob.connect()]);

  const hello = await alice.send({ to: bobAuth.session.user }, { text: 'hi bob' });
  console.log(`alice's message is #${hello.seq} of ${hello.conv}`);
  const answer = await bob.reply(hello.conv, hello.seq, { text: 'hi alice' });
  await bob.react(hello.conv, hello.seq, '👍');
  await bob.markRead(hello.conv, answer.seq);
  await new Promise((resolve) => setTimeout(resolve, 500));

  for (const view of foldMessages(await alice.localMessages(hello.conv))) {
    console.log(`  #${view.seq} ${view.from}: ${view.text ?? ''} ${JSON.stringify(view.reactions)}`);
  }
  console.log('alice sees', alice.conversationState(hello.conv));
  await Promise.all([alice.close(), bob.close()]);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

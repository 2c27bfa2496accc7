/**
 * The sum of the samples in a server's Prometheus text (`GET <url>/metrics`) whose line
 * starts with `prefix`: a series with its labels (`tether_ws_tokens_total{result="cookie"}`)
 * or a name followed by a space for one without. 0 when none matches.
 */
export async function metricSum(url: string, prefix: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) if (line.startsWith(prefix)) sum += Number(line.split(" ").at(-1));
  return sum;
}

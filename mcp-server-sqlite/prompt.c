/* prompt.c: the "mcp-demo" prompt, which walks a user through this server's prompts, tools and resource. */
#include "prompt.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "mcp/jsonrpc.h"
#include "sqljson.h"

/* Every "{topic}" is replaced by the user's topic. */
static const char prompt_demo_text[] =
	"You are about to give the user a short, hands-on demo of the Model Context Protocol (MCP), "
	"using this SQLite MCP server. The user chose the topic: {topic}.\n"
	"\n"
	"Begin by explaining what is happening: the user installed the SQLite MCP server, picked the "
	"\"mcp-demo\" prompt in their client and supplied a topic. The demo shows the three building "
	"blocks of an MCP server:\n"
	"<mcp>\n"
	"Prompts: reusable conversation templates. This one, \"mcp-demo\", takes a \"topic\" argument and "
	"leads the user through building a database around it, analysing the data and collecting insights.\n"
	"Tools: actions the assistant can take here:\n"
	"- \"read_query\": run a SELECT query and read rows\n"
	"- \"write_query\": run an INSERT, UPDATE or DELETE statement\n"
	"- \"create_table\": create a table\n"
	"- \"list_tables\": list the tables\n"
	"- \"describe_table\": show the columns of a table\n"
	"- \"append_insight\": add a finding to the insights memo\n"
	"Resources: context documents the client can read. This server offers \"memo://insights\", a "
	"business insights memo that grows every time append_insight is used.\n"
	"</mcp>\n"
	"\n"
	"<demo-instructions>\n"
	"Work through these steps, pausing for the user's choice where a step says so. Drive the "
	"scenario to its end.\n"
	"\n"
	"1. Story: invent a business situation about {topic} in which the user (the protagonist) must "
	"gather and analyse data before a looming deadline. Give a light-hearted reason why nobody has "
	"prepared the data yet, and offer yourself as the business tool that will help.\n"
	"\n"
	"2. Data: tell the user you are \"Setting up the data\" and, without asking what data is needed, "
	"design two or three related tables with sensible columns and types. Create them with "
	"create_table, then fill each with 10 to 15 varied, realistic rows using write_query.\n"
	"\n"
	"3. Pause: summarise the data you created and offer a few numbered analysis questions in plain "
	"language. When the user picks one, write the SQL for it and run it with read_query.\n"
	"\n"
	"4. Analyse: comment on every result and record each useful business finding with "
	"append_insight. Offer at most one more round of questions, each with a line on what it would "
	"show; this is a short demo.\n"
	"\n"
	"5. Dashboard: present the key figures as a dashboard (tables and charts, in an artifact if the "
	"client supports one) and explain how each part relates to the business problem.\n"
	"\n"
	"6. Final memo: each append_insight call updated the memo://insights resource; tell the user "
	"so whenever it happens. Point them to the \"Business Insights Memo\" resource in their client's "
	"MCP attachment menu, and present the final memo.\n"
	"\n"
	"7. Wrap up: explain that this is only the beginning of what the SQLite MCP server can do.\n"
	"</demo-instructions>\n"
	"\n"
	"Keep every table, query, insight and the dashboard tied to {topic} and to the business problem. "
	"The XML tags are for you only: keep them and these instructions out of your answers, stay in "
	"character and keep the output easy to read.\n"
	"\n"
	"Open in character, with something like: \"Hi there! I see you picked the topic {topic}. "
	"Let's get started! \xF0\x9F\x9A\x80\"";

json_t *prompt_list(void)
{
	return json_pack("{s:[{s:s, s:s, s:[{s:s, s:s, s:b}]}]}", "prompts", "name", PROMPT_DEMO_NAME, "description",
			 "Seeds the database with data about a topic of your choice and demonstrates "
			 "what an assistant can do with this SQLite MCP server",
			 "arguments", "name", "topic", "description", "The topic to build the demo database around",
			 "required", 1);
}

/* prompt_fill: append the demo text with topic[0..n) for every "{topic}". */
static int prompt_fill(buf_t *out, const char *topic, size_t n)
{
	static const char mark[] = "{topic}";
	const char *p = prompt_demo_text, *q;

	while ((q = strstr(p, mark)) != NULL) {
		if (buf_append(out, p, (size_t)(q - p)) < 0 || buf_append(out, topic, n) < 0)
			return -1;
		p = q + sizeof mark - 1;
	}
	return buf_puts(out, p);
}

json_t *prompt_get(const char *name, const json_t *args, int *code, char *msg, size_t msglen)
{
	const json_t *topic = args ? json_object_get(args, "topic") : NULL;
	buf_t text = BUF_INIT, desc = BUF_INIT;
	json_t *res = NULL;

	*code = JR_INVALID_PARAMS;
	if (strcmp(name, PROMPT_DEMO_NAME) != 0) {
		snprintf(msg, msglen, "Unknown prompt: %.200s", name);
		return NULL;
	}
	if (!json_is_string(topic)) {
		snprintf(msg, msglen, "%s",
			 topic ? "Argument topic must be a string" : "Missing required argument: topic");
		return NULL;
	}
	*code = JR_INTERNAL_ERROR;
	snprintf(msg, msglen, "out of memory");
	if (prompt_fill(&text, json_string_value(topic), json_string_length(topic)) < 0 ||
	    buf_puts(&desc, "Demo template for ") < 0 ||
	    buf_append(&desc, json_string_value(topic), json_string_length(topic)) < 0)
		goto out;
	res = json_pack("{s:o, s:[{s:s, s:{s:s, s:o}}]}", "description", sqljson_text(desc.data, desc.len), "messages",
			"role", "user", "content", "type", "text", "text", sqljson_text(text.data, text.len));
out:
	buf_free(&text);
	buf_free(&desc);
	return res;
}

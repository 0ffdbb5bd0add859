-- phi3serve code assistant for Neovim's built-in LSP client (Neovim >= 0.7).
--
-- Starts the phi3 language server (clients/lsp/dist/server.js, built by
-- `scripts/setup.sh --tests` or `npm ci --ignore-scripts && npm run build` in
-- clients/lsp) and attaches it to every file buffer. In init.lua:
--
--   local phi3 = dofile("/path/to/phi3serve/clients/nvim/phi3.lua")
--   phi3.setup({
--     addr = "127.0.0.1:50051",       -- phi3-server or the fleet router
--     -- tls = true, ca_cert = "/path/ca.pem", route_key = "my-team",
--     -- init_options = { maxTokens = 64, debounceMs = 75, warmup = true },
--   })
--
-- The API key is read by the server from $PHI3_API_KEY: keep it out of this
-- file. Neovim 0.7 has no inline (ghost text) completion, so completions come
-- as textDocument/completion:
--   <C-l> in insert mode     insert phi3's continuation at the cursor
--                            (multi-line; `keymap = false` to not map it)
--   <C-x><C-o>               the same as an omnifunc item (single line)
--   :Phi3Explain  (range)    explain the selected lines in a scratch buffer
--   :Phi3Fix [what] (range)  propose a fix, shown in a scratch buffer, applied
--                            after a confirmation (:Phi3Fix! applies at once)
--   :Phi3Status              tokens, dollars and last latency of the session
-- `vim.g.phi3_status` holds a one-line status for a statusline.
local M = {}

M.status = nil     -- the last phi3/status notification
M.client_id = nil

local function script_dir()
  local source = debug.getinfo(1, "S").source:sub(2)
  return vim.fn.fnamemodify(source, ":p:h")
end

local function format_status(s)
  local latency = s.lastFirstTokenMs and string.format("%d ms", s.lastFirstTokenMs) or "-"
  return string.format("phi3 %s | %d tok (%d cached) + %d out | $%.6f | first token %s",
                       s.state, s.promptTokens, s.cachedPromptTokens, s.completionTokens,
                       s.costUsd, latency)
end

local function client()
  return M.client_id and vim.lsp.get_client_by_id(M.client_id) or nil
end

-- The selected lines [line1, line2] (1-based) as an LSP range.
local function line_range(line1, line2)
  local last = vim.api.nvim_buf_get_lines(0, line2 - 1, line2, false)[1] or ""
  return { start = { line = line1 - 1, character = 0 },
           ["end"] = { line = line2 - 1, character = #last } }
end

local function scratch(lines, filetype)
  vim.cmd("botright new")
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].filetype = filetype
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  return buf
end

local function run_command(command, args, on_result)
  local c = client()
  if not c then
    vim.notify("phi3: the language server is not running", vim.log.levels.ERROR)
    return
  end
  c.request("workspace/executeCommand", { command = command, arguments = { args } },
    function(err, result)
      if err or not result or result.kind == "error" then
        local why = err and err.message or (result and result.error) or "no result"
        vim.notify("phi3: " .. command .. " failed: " .. why, vim.log.levels.ERROR)
        return
      end
      on_result(result)
    end, 0)
end

-- Inserts phi3's continuation at the cursor (insert or normal mode). The
-- answer is dropped if the buffer changed meanwhile.
function M.complete()
  local c = client()
  if not c then return end
  local bufnr = vim.api.nvim_get_current_buf()
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local params = vim.lsp.util.make_position_params()
  c.request("textDocument/completion", params, function(err, result)
    if err or not result or vim.api.nvim_buf_get_changedtick(bufnr) ~= tick then return end
    local item = (result.items or result)[1]
    if not item or not item.textEdit then return end
    local edit = item.textEdit
    vim.lsp.util.apply_text_edits({ edit }, bufnr, "utf-16")
    -- Cursor at the end of the inserted text.
    local lines = vim.split(edit.newText, "\n", true)
    local row = edit.range.start.line + #lines
    local col = (#lines == 1 and edit.range.start.character or 0) + #lines[#lines]
    if vim.api.nvim_get_current_buf() == bufnr then
      vim.api.nvim_win_set_cursor(0, { row, col })
    end
  end, bufnr)
end

function M.explain(line1, line2)
  local args = { uri = vim.uri_from_bufnr(0), range = line_range(line1, line2) }
  run_command("phi3.explain", args, function(result)
    scratch(vim.split(result.markdown, "\n", true), "markdown")
  end)
end

function M.fix(line1, line2, instruction, apply_now)
  local bufnr = vim.api.nvim_get_current_buf()
  local args = { uri = vim.uri_from_bufnr(bufnr), range = line_range(line1, line2),
                 instruction = instruction ~= "" and instruction or nil }
  run_command("phi3.fix", args, function(result)
    local apply = function() vim.lsp.util.apply_workspace_edit(result.edit, "utf-16") end
    if apply_now then return apply() end
    local change = result.edit.changes[args.uri][1]
    scratch(vim.split(change.newText, "\n", true), vim.bo[bufnr].filetype)
    if vim.fn.confirm("Apply phi3's fix to the selected lines?", "&Yes\n&No", 2) == 1 then
      vim.cmd("close")
      apply()
    end
  end)
end

function M.setup(opts)
  opts = opts or {}
  local cmd = opts.cmd
  if not cmd then
    cmd = { opts.node or "node", opts.server or (script_dir() .. "/../lsp/dist/server.js"), "--stdio" }
    if opts.addr then vim.list_extend(cmd, { "--addr", opts.addr }) end
    if opts.route_key then vim.list_extend(cmd, { "--route-key", opts.route_key }) end
    if opts.tls then table.insert(cmd, "--tls") end
    if opts.ca_cert then vim.list_extend(cmd, { "--ca-cert", opts.ca_cert }) end
  end
  local config = {
    name = "phi3",
    cmd = cmd,
    root_dir = opts.root_dir or vim.loop.cwd(),
    init_options = opts.init_options or {},
    handlers = {
      ["phi3/status"] = function(_, result)
        M.status = result
        vim.g.phi3_status = format_status(result)
      end,
    },
  }
  local group = vim.api.nvim_create_augroup("phi3", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = opts.filetypes or "*",
    callback = function(ev)
      if vim.bo[ev.buf].buftype ~= "" then return end
      if not client() then M.client_id = vim.lsp.start_client(config) end
      if M.client_id then vim.lsp.buf_attach_client(ev.buf, M.client_id) end
      if opts.omnifunc ~= false then vim.bo[ev.buf].omnifunc = "v:lua.vim.lsp.omnifunc" end
      if opts.keymap ~= false then
        vim.keymap.set("i", opts.keymap or "<C-l>", M.complete, { buffer = ev.buf, desc = "phi3 complete" })
      end
    end,
  })
  vim.api.nvim_create_user_command("Phi3Explain", function(c) M.explain(c.line1, c.line2) end,
                                   { range = true })
  vim.api.nvim_create_user_command("Phi3Fix", function(c) M.fix(c.line1, c.line2, c.args, c.bang) end,
                                   { range = true, nargs = "?", bang = true })
  vim.api.nvim_create_user_command("Phi3Status", function()
    print(M.status and format_status(M.status) or "phi3: no status yet")
  end, {})
end

return M

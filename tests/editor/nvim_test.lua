-- Neovim (headless) with the shipped config, clients/nvim/phi3.lua, against a
-- real phi3-server (started by editor_test.cc). Run as
--   nvim --headless -u NONE -i NONE -n -c "luafile tests/editor/nvim_test.lua"
-- with PHI3_NVIM_CONFIG, PHI3_LSP_SERVER, PHI3_ADDR, PHI3_TEST_FILE and
-- PHI3_NVIM_OUT set. Writes "ok ..." lines (or "FAILED: why") to
-- PHI3_NVIM_OUT and exits 0 / 1.
local out = assert(io.open(os.getenv("PHI3_NVIM_OUT"), "w"))

local function finish(ok, message)
  out:write((ok and "ok " or "FAILED: ") .. message .. "\n")
  out:close()
  vim.cmd(ok and "qall!" or "cquit 1")
end

local function check(cond, message)
  if not cond then finish(false, message) error(message) end
end

local ok, err = pcall(function()
  vim.cmd("filetype on")  -- -u NONE turns detection off; user configs have it
  local phi3 = dofile(os.getenv("PHI3_NVIM_CONFIG"))
  phi3.setup({
    server = os.getenv("PHI3_LSP_SERVER"),
    addr = os.getenv("PHI3_ADDR"),
    init_options = { debounceMs = 0, warmup = false, maxTokens = 16, maxLines = 3,
                     commandMaxTokens = 16 },
  })
  vim.cmd("edit " .. os.getenv("PHI3_TEST_FILE"))
  local attached = vim.wait(15000, function()
    local c = phi3.client_id and vim.lsp.get_client_by_id(phi3.client_id)
    return c ~= nil and c.initialized == true and vim.lsp.buf_is_attached(0, phi3.client_id)
  end, 20)
  check(attached, "the phi3 language server did not attach")

  -- A completion at the end of line 2 is inserted into the buffer.
  local before = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  vim.api.nvim_win_set_cursor(0, { 2, #before[2] })
  local col = vim.api.nvim_win_get_cursor(0)[2]  -- normal mode: on the last character
  local tick = vim.api.nvim_buf_get_changedtick(0)
  phi3.complete()
  local completed = vim.wait(20000, function()
    return phi3.status ~= nil and phi3.status.requests >= 1 and phi3.status.state == "idle"
  end, 20)
  check(completed, "no completion status arrived")
  vim.wait(200)  -- the edit is applied in the same handler round
  local after = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  check(vim.api.nvim_buf_get_changedtick(0) ~= tick, "the completion changed nothing")
  local rest = before[2]:sub(col + 1)
  check(after[2]:sub(1, col) == before[2]:sub(1, col), "text before the cursor changed: " .. after[2])
  check(vim.endswith(table.concat(after, "\n"), rest .. "\n" .. table.concat(before, "\n", 3)),
        "text after the cursor changed: " .. after[2])
  local inserted = table.concat(after, "\n"):len() - table.concat(before, "\n"):len()
  check(inserted > 0, "nothing was inserted")
  check(after[#after] == before[#before], "the last line changed")
  out:write(string.format("ok completion inserted %d characters: %q\n", inserted, after[2]))

  -- :Phi3Explain opens the explanation in a markdown scratch buffer.
  local windows = #vim.api.nvim_list_wins()
  vim.cmd("1,2Phi3Explain")
  local explained = vim.wait(20000, function() return #vim.api.nvim_list_wins() > windows end, 20)
  check(explained, "no explanation window")
  check(vim.bo.filetype == "markdown", "explanation filetype " .. vim.bo.filetype)
  vim.cmd("close")

  vim.cmd("Phi3Status")
  check(vim.g.phi3_status ~= nil and vim.g.phi3_status:find("phi3 ") == 1, "no status line")
  finish(true, "nvim " .. tostring(vim.version().major) .. "." .. tostring(vim.version().minor) ..
         ": " .. vim.g.phi3_status)
end)
if not ok then pcall(finish, false, tostring(err)) end

-- stagecoder user commands. The language server itself starts only after
-- require('stagecoder').setup{} (see :help stagecoder).

if vim.g.loaded_stagecoder then
  return
end
vim.g.loaded_stagecoder = true

vim.api.nvim_create_user_command('StagecoderReview', function(cmd)
  require('stagecoder.review').run({ paths = cmd.fargs })
end, {
  nargs = '*',
  complete = 'file',
  desc = 'stagecoder: review files or the project into the quickfix list',
})

vim.api.nvim_create_user_command('StagecoderRestart', function()
  require('stagecoder').restart()
end, { desc = 'stagecoder: restart the language server' })
